"""`costalloc list|get|assign|unassign|upload-destination`: the API's operations, run directly
against the service as the bootstrap administrator. Output is the API's JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from costalloc_pipeline import allocations
from costalloc_pipeline.auth import Caller, admin_caller
from costalloc_pipeline.cli.admin import require_initialised
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.runtime import resolve_settings
from costalloc_pipeline.s3 import s3_client


def _print(body: dict[str, Any]) -> None:
    print(json.dumps(body, indent=2))


def _admin(settings: Settings) -> Caller:
    require_initialised(settings)
    with engine_for(settings.repository_url).connect() as conn:
        return admin_caller(conn)


def run_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    _admin(settings)
    page = allocations.list_cost_allocations(engine_for(settings.repository_url), args.limit, args.next_page_token)
    _print(page.as_json())
    return 0


def run_get(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    _admin(settings)
    _print(allocations.get_for_project(engine_for(settings.repository_url), args.entity).as_json())
    return 0


def run_assign(args: argparse.Namespace) -> int:
    # Only a new cost allocation needs S3 (its bucket); resolving starts the embedded one if needed.
    settings = resolve_settings()
    caller = _admin(settings)
    engine = engine_for(settings.repository_url)
    result = allocations.assign(engine, s3_client(settings), settings, args.entity, args.name, caller)
    _print(result.cost_allocation.as_json())
    return 0


def run_unassign(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    allocations.unassign(engine_for(settings.repository_url), args.entity, _admin(settings))
    print(f"{args.entity}: removal requested; its files move back to the default bucket, then it is removed")
    return 0


def run_upload_destination(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    _print(allocations.upload_destination(engine_for(settings.repository_url), args.entity, _admin(settings)).as_json())
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = commands.add_parser(
        "list",
        help="list cost allocations, one page at a time",
        description="Prints one page of cost allocations as JSON; pass its nextPageToken to get the next.",
    )
    listing.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"page size, 1 to {allocations.MAX_PAGE_LIMIT} (default {allocations.DEFAULT_PAGE_LIMIT})",
    )
    listing.add_argument("--next-page-token", default=None, help="the nextPageToken of the previous page")
    listing.set_defaults(handler=run_list)

    get = commands.add_parser(
        "get", help="show a project's cost allocation", description="Prints the project's cost allocation as JSON."
    )
    get.add_argument("entity", metavar="ENTITY", help="project id, syn123 or 123")
    get.set_defaults(handler=run_get)

    assign = commands.add_parser(
        "assign",
        help="assign a project to a cost allocation (created with its bucket if new)",
        description=(
            "Associates the project with cost allocation NAME, creating it and its bucket when the name is new. "
            "A project of another cost allocation is moved to this one. Safe to repeat."
        ),
    )
    assign.add_argument("entity", metavar="ENTITY", help="project id, syn123 or 123")
    assign.add_argument("name", metavar="NAME", help="cost allocation name: letters, digits, '-', '.', '_'")
    assign.set_defaults(handler=run_assign)

    unassign = commands.add_parser(
        "unassign",
        help="remove a project from its cost allocation",
        description=(
            "Marks the association REMOVING; the pipeline moves the files back to the default bucket, then removes it."
        ),
    )
    unassign.add_argument("entity", metavar="ENTITY", help="project id, syn123 or 123")
    unassign.set_defaults(handler=run_unassign)

    destination = commands.add_parser(
        "upload-destination",
        help="where a new file under an entity must be uploaded",
        description="Prints the bucket, key prefix and storage location for a new upload under ENTITY.",
    )
    destination.add_argument("entity", metavar="ENTITY", help="entity id, syn123 or 123")
    destination.set_defaults(handler=run_upload_destination)
