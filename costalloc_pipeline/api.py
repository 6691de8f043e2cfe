"""The REST API (FastAPI): the service's operations over HTTP, JSON in camelCase as Synapse writes it.

Every endpoint is for members of the Cost Allocation Team only. Errors are `{"reason": ...}`
with the status of the CostAllocError raised; anything unexpected is a bare 500, logged here.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from costalloc_pipeline import service
from costalloc_pipeline.auth import Caller, authenticate
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.errors import BadRequest, CostAllocError
from costalloc_pipeline.s3 import s3_client

log = logging.getLogger(__name__)


def _reason(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"reason": reason}, status_code=status)


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
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return _reason(error.status_code, str(error.detail))

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
        raise BadRequest("the body must be JSON: {\"name\": \"<cost allocation name>\"}") from None
    if not isinstance(body, dict) or "name" not in body:
        raise BadRequest("the body must be a JSON object with a \"name\"")
    return body["name"]


def current_caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    with request.app.state.engine.connect() as conn:
        return authenticate(conn, authorization)


CallerDep = Annotated[Caller, Depends(current_caller)]


def create_app(settings: Settings) -> FastAPI:
    engine = engine_for(settings.repository_url)
    s3 = s3_client(settings)
    app = FastAPI(
        title="costalloc",
        summary="Cost allocations (one S3 bucket each) for the projects of a Synapse-like repository.",
    )
    app.state.engine = engine
    _install_error_handlers(app)

    @app.get("/costAllocation")
    def list_cost_allocations(
        _caller: CallerDep,
        limit: Annotated[int | None, Query()] = None,
        next_page_token: Annotated[str | None, Query(alias="nextPageToken")] = None,
    ) -> dict[str, Any]:
        return service.list_cost_allocations(engine, limit, next_page_token).as_json()

    @app.get("/entity/{entity_id}/costAllocation")
    def get_cost_allocation(entity_id: str, _caller: CallerDep) -> dict[str, Any]:
        return service.get_for_project(engine, entity_id).as_json()

    # async only to read the body after authentication (a malformed body from a stranger is a 401,
    # not a 400); the blocking work runs in the thread pool like the sync endpoints.
    @app.post("/entity/{entity_id}/costAllocation")
    async def assign_cost_allocation(entity_id: str, request: Request, caller: CallerDep) -> JSONResponse:
        name = await _name_from_body(request)
        result = await run_in_threadpool(service.assign, engine, s3, settings, entity_id, name, caller)
        return JSONResponse(result.cost_allocation.as_json(), status_code=201 if result.created else 200)

    @app.delete("/entity/{entity_id}/costAllocation", status_code=204)
    def unassign_cost_allocation(entity_id: str, caller: CallerDep) -> Response:
        service.unassign(engine, entity_id, caller)
        return Response(status_code=204)

    @app.get("/entity/{entity_id}/uploadDestination")
    def upload_destination(entity_id: str, caller: CallerDep) -> dict[str, Any]:
        return service.upload_destination(engine, entity_id, caller).as_json()

    return app
