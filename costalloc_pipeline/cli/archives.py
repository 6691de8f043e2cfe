"""`costalloc locate HANDLE` and `costalloc restore (HANDLE | --project P)`: find a handle's
archived objects, restore them from their archive class, and with `--reinstate` make a restored
archive the handle's live object again (costalloc_pipeline/archives/).

`restore` exits 0 when every request was made or already stands (and, with --reinstate, every
handle is live); 1 when some archive is gone, S3 refused, or a handle could not be reinstated yet
(a restore still in progress: run it again later); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from sqlalchemy import Engine, select

from costalloc_pipeline.archives.locate import IN_PROGRESS, HandleArchives, archive_records, archived_handles, locate
from costalloc_pipeline.archives.reinstate import Refused, Reinstated, reinstate
from costalloc_pipeline.archives.restore import (
    MAX_DAYS,
    TIERS,
    RestoreResult,
    check_request,
    estimate,
    restore_newest,
)
from costalloc_pipeline.billing.prices import load_price_table
from costalloc_pipeline.cli.admin import require_initialised
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.errors import BadRequest, NotFound
from costalloc_pipeline.naming import format_entity_id, parse_entity_id
from costalloc_pipeline.runtime import resolve_settings
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import files

_TIME = "%Y-%m-%d %H:%M UTC"


def parse_handle_id(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise BadRequest(f"file handle id {raw!r} is not a positive integer")
    return int(raw)


def _where(bucket: str, key: str, version_id: str | None) -> str:
    return f"s3://{bucket}/{key}" + (f" version {version_id}" if version_id else "")


def locate_lines(found: HandleArchives, retention_days: int) -> list[str]:
    now = found.current
    held = "no object there" if now.storage_class is None else f"{now.storage_class} object"
    lines = [f"file handle {found.handle_id} ({now.status}) lives at s3://{now.bucket}/{now.key} ({held})"]
    for number, archive in enumerate(found.archives, start=1):
        what = "gone" if archive.storage_class is None else f"{archive.storage_class}, {archive.size} bytes"
        where = _where(archive.bucket, archive.key, archive.version_id)
        lines += [
            f"archive {number} of {len(found.archives)}: {where} ({what})",
            f"  archived on: {archive.archived_on:{_TIME}}",
            f"  expires on:  {archive.expires_on:{_TIME}} (COSTALLOC_ARCHIVE_RETENTION_DAYS={retention_days})",
            f"  restore:     {archive.restore.describe()}",
        ]
    return lines


def run_locate(args: argparse.Namespace) -> int:
    handle_id = parse_handle_id(args.handle)
    settings = resolve_settings()
    require_initialised(settings)
    with engine_for(settings.repository_url).connect() as conn:
        found = locate(conn, s3_client(settings), handle_id, settings.archive_retention_days, utcnow())
    print(
        json.dumps(found.as_json(), indent=2)
        if args.json
        else "\n".join(locate_lines(found, settings.archive_retention_days))
    )
    return 0


def _restore_line(result: RestoreResult, tier: str, days: int) -> str:
    what = _where(result.bucket, result.key, result.version_id)
    if result.storage_class is not None:
        what += f" ({result.storage_class}, {result.size} bytes)"
    if result.billed:
        return f"{what}: {result.outcome} ({tier} tier, readable for {days} days)"
    return f"{what}: {result.outcome}"


def _handles(repository: Engine, args: argparse.Namespace) -> list[int]:
    """The archived handles to restore: the one given, or every one of the project."""
    with repository.connect() as conn:
        if args.project is not None:
            project_id = parse_entity_id(args.project)
            handles = archived_handles(conn, project_id)
            if not handles:
                raise NotFound(f"{format_entity_id(project_id)} has no archived objects (the move ledger records none)")
            return handles
        handle_id = parse_handle_id(args.handle)
        if conn.execute(select(files.c.id).where(files.c.id == handle_id)).first() is None:
            raise NotFound(f"file handle {handle_id} does not exist")
        if not archive_records(conn, handle_id):
            raise NotFound(f"file handle {handle_id} has no archived object (the move ledger records none)")
    return [handle_id]


def run_restore(args: argparse.Namespace) -> int:
    if (args.handle is None) == (args.project is None):
        raise BadRequest("give either HANDLE or --project P")
    tier = check_request(args.tier, args.days)
    settings = resolve_settings()
    require_initialised(settings)
    prices = load_price_table(settings.price_table)
    repository = engine_for(settings.repository_url)
    handles = _handles(repository, args)
    s3 = s3_client(settings, max_pool_connections=2 * settings.copy_concurrency)
    now = utcnow()
    with repository.connect() as conn:
        records = {h: archive_records(conn, h) for h in handles}
    results: dict[tuple[str, str], RestoreResult] = {}
    for handle_id in handles:
        newest = records[handle_id][0]
        if (newest.bucket, newest.key) not in results:
            result = restore_newest(s3, records[handle_id], tier, args.days, prices, now)
            results[(result.bucket, result.key)] = result
    cost = estimate(prices, results.values(), tier, args.days)
    reinstated: dict[int, Reinstated | str] = {}
    if args.reinstate:
        for handle_id in handles:
            try:
                reinstated[handle_id] = reinstate(settings, repository, s3, handle_id)
            except Refused as why:
                reinstated[handle_id] = str(why)
    problems = [r for r in results.values() if not r.ok]
    refused = [h for h, outcome in reinstated.items() if isinstance(outcome, str)]
    if args.json:
        print(
            json.dumps(
                {
                    "restores": [asdict(r) for r in results.values()],
                    "estimate": {**asdict(cost), "total": cost.total},
                    "reinstated": {
                        str(h): (
                            asdict(o) if isinstance(o, Reinstated) else {"handle_id": h, "changed": False, "refused": o}
                        )
                        for h, o in reinstated.items()
                    },
                },
                indent=2,
            )
        )
    else:
        print("\n".join(_restore_line(r, tier, args.days) for r in results.values()))
        print(
            f"estimated cost: ${cost.total:.6f} (retrieval ${cost.retrieval:.6f}, requests ${cost.requests:.6f}, "
            f"restored copies for {args.days} days ${cost.restored_copies:.6f})"
        )
        waiting = sum(1 for r in results.values() if r.outcome == IN_PROGRESS)
        if waiting and not args.reinstate:
            print(f"{waiting} restores in progress; `costalloc locate HANDLE` shows when they are done")
        for handle_id, outcome in reinstated.items():
            said = outcome.message if isinstance(outcome, Reinstated) else f"not reinstated: {outcome}"
            print(f"file handle {handle_id}: {said}")
    return 1 if problems or refused else 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    found = commands.add_parser(
        "locate",
        help="where a file handle's archived objects are, and their restore status",
        description=(
            "Lists every object the mover archived for the handle (from the move ledger): bucket, key, "
            "storage class, when it was archived, when the lifecycle rule expires it "
            "(COSTALLOC_ARCHIVE_RETENTION_DAYS later), and its restore status from S3 (not requested, in "
            "progress, restored until a date); and where the handle lives now."
        ),
    )
    found.add_argument("handle", metavar="HANDLE", help="file handle id")
    found.add_argument("--json", action="store_true", help="print the result as JSON")
    found.set_defaults(handler=run_locate)

    restore = commands.add_parser(
        "restore",
        help="restore a handle's (or a project's) archived objects; --reinstate makes them live again",
        description=(
            "Requests an S3 restore of the newest archive of the handle, or of every archived handle of "
            "the project, and prints the estimated cost. A restore already requested reports its status. "
            "With --reinstate, a handle whose archive is readable gets a live STANDARD copy at the "
            "archive's key in the bucket its project's placement wants, verified against its size and "
            "MD5, and is repointed to it under the project's lease; a handle already pointing at a live, "
            "verified object is left unchanged. Exits 1 when something is not done yet (run it again)."
        ),
    )
    restore.add_argument("handle", metavar="HANDLE", nargs="?", default=None, help="file handle id")
    restore.add_argument("--project", metavar="P", default=None, help="every archived handle of project P (syn123)")
    restore.add_argument("--tier", default="Standard", help=f"retrieval tier: {', '.join(TIERS)} (default Standard)")
    restore.add_argument(
        "--days",
        type=int,
        default=7,
        metavar="N",
        help=f"days the restored copy stays readable (1-{MAX_DAYS}, default 7)",
    )
    restore.add_argument(
        "--reinstate", action="store_true", help="once readable, make the restored copy the handle's live object"
    )
    restore.add_argument("--json", action="store_true", help="print the result as JSON")
    restore.set_defaults(handler=run_restore)
