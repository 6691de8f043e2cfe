"""`costalloc resume [PROJECT]`: finish the moves the ledger shows as interrupted, without a Dagster
run (what that does: costalloc_pipeline/mover/recovery.py). Exit status 0 when nothing is left
interrupted, 1 when some moves still failed (run it again).
"""

from __future__ import annotations

import argparse

from costalloc_pipeline.cli.admin import require_initialised
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.mover.recovery import left_interrupted, resume, waiting_archives
from costalloc_pipeline.naming import format_entity_id, parse_entity_id
from costalloc_pipeline.runtime import resolve_settings
from costalloc_pipeline.s3 import s3_client


def run_resume(args: argparse.Namespace) -> int:
    project_id = parse_entity_id(args.project) if args.project is not None else None
    settings = resolve_settings()
    require_initialised(settings)
    s3 = s3_client(settings, max_pool_connections=2 * settings.copy_concurrency)
    outcomes = resume(settings, s3, project_id)
    if not outcomes:
        print("no interrupted moves")
    for outcome in outcomes:
        print(outcome.summary())
    repository = engine_for(settings.repository_url)
    left = left_interrupted(repository, project_id, settings.archive_grace_seconds)
    failed = sum(len(outcome.moved.failed) for outcome in outcomes)
    waiting = waiting_archives(repository, project_id, settings.archive_grace_seconds)
    if waiting:
        print(
            f"{waiting} sources stay live until their grace period is over "
            f"(COSTALLOC_ARCHIVE_GRACE_SECONDS={settings.archive_grace_seconds}); they are archived then"
        )
    if left:
        print(f"still interrupted (S3 refused): {', '.join(map(format_entity_id, sorted(left)))}; run it again")
    if failed:
        print(f"{failed} moves failed; their ledger rows say why, and the next relocation run tries them again")
    return 1 if left or failed else 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "resume",
        help="finish moves a crash left half-done (all projects, or PROJECT)",
        description=(
            "Archives the sources of moves left repointed but not archived, moves again the handles of "
            "moves left copied but not repointed (reusing the verified copies), and closes interrupted "
            "moves that are no longer wanted. Exits 1 when some moves are still not finished."
        ),
    )
    command.add_argument("project", metavar="PROJECT", nargs="?", default=None, help="project id, syn123 or 123")
    command.set_defaults(handler=run_resume)
