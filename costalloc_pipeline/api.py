"""The REST API (FastAPI): the service's operations over HTTP, JSON in camelCase as Synapse writes it.

Every endpoint is for members of the Cost Allocation Team only. Errors are `{"reason": ...}`
with the status of the CostAllocError raised; anything unexpected is a bare 500, logged here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match

from costalloc_pipeline import allocations
from costalloc_pipeline import api_schema as doc
from costalloc_pipeline.allocations.retire import retire
from costalloc_pipeline.auth import Caller, authenticate
from costalloc_pipeline.billing.report import storage_report
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.errors import BadRequest, CostAllocError
from costalloc_pipeline.naming import parse_allocation_id
from costalloc_pipeline.s3 import s3_client

log = logging.getLogger(__name__)


def _reason(status: int, reason: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"reason": reason}, status_code=status, headers=headers)


def _allowed_methods(app: FastAPI, request: Request) -> str:
    """Every method some route of this path answers (RFC 9110: a 405 lists them in `Allow`)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _validation_reason(error: RequestValidationError) -> str:
    parts = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail.get("loc", ()) if part not in ("query", "path", "header"))
        parts.append(f"{where}: {detail.get('msg', 'invalid')}" if where else str(detail.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CostAllocError)
    async def cost_alloc_error(_request: Request, error: CostAllocError) -> JSONResponse:
        return _reason(error.status, error.reason)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _reason(400, _validation_reason(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 405:
            return _reason(405, f"{request.method} is not allowed here", {"Allow": _allowed_methods(app, request)})
        return _reason(error.status_code, str(error.detail), error.headers)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        # The trace goes to the server log only; the client learns nothing of the internals.
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
        return _reason(500, "internal server error")


async def _name_from_body(request: Request) -> object:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    # ValueError covers bad JSON, bad UTF-8 and over-long integers; RecursionError, deep nesting.
    except (ValueError, RecursionError):
        raise BadRequest('the body must be JSON: {"name": "<cost allocation name>"}') from None
    if not isinstance(body, dict) or "name" not in body:
        raise BadRequest('the body must be a JSON object with a "name"')
    return body["name"]


# Declares the scheme in the document; the header itself is read by authenticate(), which explains
# what is wrong with a malformed one (the scheme would only say "not authenticated").
_bearer = HTTPBearer(auto_error=False, description="a token of a member of the Cost Allocation Team")


def current_caller(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> Caller:
    with request.app.state.engine.connect() as conn:
        return authenticate(conn, request.headers.get("authorization"))


CallerDep = Annotated[Caller, Security(current_caller)]


def known_query_only(request: Request, _caller: CallerDep) -> None:
    """A query parameter the operation does not take is a 400 (a typo must not be ignored), once
    the caller is known: a stranger learns nothing but 401."""
    route = request.scope.get("route")
    # The endpoints' own parameters: no dependency of theirs takes a query parameter.
    known = {param.alias for param in route.dependant.query_params} if route else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
        raise BadRequest(f"unknown query parameter {unknown[0]!r}: {takes}")


def create_app(settings: Settings) -> FastAPI:
    engine = engine_for(settings.repository_url)
    s3 = s3_client(settings)
    app = FastAPI(
        dependencies=[Depends(known_query_only)],
        title="costalloc",
        summary="Cost allocations (one S3 bucket each) for the projects of a Synapse-like repository.",
    )
    app.state.engine = engine
    _install_error_handlers(app)

    @app.get(
        "/costAllocation",
        operation_id="listCostAllocations",
        response_model=doc.CostAllocationPage,
        response_model_exclude_none=True,
        responses=doc.errors(),
    )
    def list_cost_allocations(
        _caller: CallerDep, limit: doc.Limit = None, next_page_token: doc.PageToken = None
    ) -> dict[str, Any]:
        return allocations.list_cost_allocations(engine, limit, next_page_token).as_json()

    @app.get(
        "/entity/{entity_id}/costAllocation",
        operation_id="getCostAllocation",
        response_model=doc.CostAllocation,
        responses=doc.errors(404),
    )
    def get_cost_allocation(entity_id: doc.EntityId, _caller: CallerDep) -> dict[str, Any]:
        return allocations.get_for_project(engine, entity_id).as_json()

    # async only to read the body after authentication (a malformed body from a stranger is a 401,
    # not a 400); the blocking work runs in the thread pool like the sync endpoints.
    @app.post(
        "/entity/{entity_id}/costAllocation",
        operation_id="assignCostAllocation",
        response_model=doc.CostAllocation,
        responses={
            200: {"model": doc.CostAllocation, "description": "assigned to an existing cost allocation"},
            201: {"model": doc.CostAllocation, "description": "assigned to a new cost allocation, its bucket created"},
            **doc.errors(404, 409, 503),
        },
        openapi_extra=doc.ASSIGN_BODY,
    )
    async def assign_cost_allocation(entity_id: doc.EntityId, request: Request, caller: CallerDep) -> JSONResponse:
        name = await _name_from_body(request)
        result = await run_in_threadpool(allocations.assign, engine, s3, settings, entity_id, name, caller)
        return JSONResponse(result.cost_allocation.as_json(), status_code=201 if result.created else 200)

    @app.delete(
        "/entity/{entity_id}/costAllocation",
        operation_id="unassignCostAllocation",
        status_code=204,
        responses=doc.errors(404, 409),
    )
    def unassign_cost_allocation(entity_id: doc.EntityId, caller: CallerDep) -> Response:
        allocations.unassign(engine, entity_id, caller)
        return Response(status_code=204)

    @app.get(
        "/costAllocation/{cost_allocation_id}/storage",
        operation_id="getCostAllocationStorage",
        response_model=doc.CostAllocationStorage,
        responses={**doc.errors(), 404: {"model": doc.Reason, "description": "no cost allocation of that id"}},
    )
    def cost_allocation_storage(cost_allocation_id: doc.CostAllocationId, _caller: CallerDep) -> dict[str, Any]:
        # The whole report is a few grouped queries; this allocation's part of it is what is asked.
        return storage_report(settings).for_cost_allocation(cost_allocation_id).as_json()

    @app.delete(
        "/costAllocation/{cost_allocation_id}",
        operation_id="retireCostAllocation",
        response_model=doc.RetiredCostAllocation,
        responses={**doc.errors(503), **doc.RETIRE_ERRORS},
    )
    def retire_cost_allocation(
        cost_allocation_id: doc.RetireId,
        _caller: CallerDep,
        delete_bucket: doc.DeleteBucket = False,
        expire_archives: doc.ExpireArchives = False,
    ) -> dict[str, Any]:
        allocation = parse_allocation_id(cost_allocation_id)
        return retire(engine, s3, allocation, delete_bucket, expire_archives).as_json()

    @app.get(
        "/entity/{entity_id}/uploadDestination",
        operation_id="getUploadDestination",
        response_model=doc.UploadDestination,
        responses=doc.errors(404),
    )
    def upload_destination(entity_id: doc.EntityId, caller: CallerDep) -> dict[str, Any]:
        return allocations.upload_destination(engine, entity_id, caller).as_json()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = doc.finish_document(
                get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
