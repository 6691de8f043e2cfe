"""`costalloc plan PROJECT [--to NAME] [--json]`: a dry run of an assignment (or, without --to, of
an unassignment): files, bytes, conflicts, bundles, S3 requests, cost and time, writing nothing
(what it computes and why: costalloc_pipeline/dry_run/)."""

from __future__ import annotations

import argparse
import json

from costalloc_pipeline.cli.admin import require_initialised
from costalloc_pipeline.dry_run.assignment import plan_assignment
from costalloc_pipeline.dry_run.report import as_json, text_lines
from costalloc_pipeline.dry_run.timing import (
    DEFAULT_BUNDLE_CONCURRENCY,
    DEFAULT_BYTES_PER_SECOND,
    DEFAULT_LATENCY_SECONDS,
)
from costalloc_pipeline.errors import BadRequest
from costalloc_pipeline.naming import parse_entity_id
from costalloc_pipeline.runtime import resolve_settings
from costalloc_pipeline.s3 import s3_client


def _positive(option: str, value: float) -> None:
    if not value > 0:
        raise BadRequest(f"{option} must be greater than 0, got {value}")


def run_plan(args: argparse.Namespace) -> int:
    project_id = parse_entity_id(args.project)
    _positive("--latency", args.latency)
    _positive("--throughput", args.throughput)
    _positive("--bundle-concurrency", args.bundle_concurrency)
    settings = resolve_settings()
    require_initialised(settings)
    s3 = None if args.assume_standard else s3_client(settings)
    plan = plan_assignment(settings, s3, project_id, args.to, args.latency, args.throughput, args.bundle_concurrency)
    print(json.dumps(as_json(plan), indent=2) if args.json else "\n".join(text_lines(plan)))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "plan",
        help="dry run: what assigning PROJECT to NAME (or unassigning it) would move, cost and take",
        description=(
            "Prints what assigning PROJECT to the cost allocation NAME (without --to: unassigning it) "
            "would do, and writes nothing: the files and bytes to move by source bucket and storage "
            "class, the conflicts with other projects, the bundles, the S3 requests by kind, the "
            "one-off cost and the monthly storage change per bucket, and a time estimate. The handles "
            "are the relocation planner's, from the replica (its freshness is printed; it is not "
            "refreshed), each re-read in the live repository. Storage classes come from "
            "ListObjectsV2 pages over the source buckets' keys, the mover's own look."
        ),
    )
    command.add_argument("project", metavar="PROJECT", help="project id, syn123 or 123")
    command.add_argument("--to", metavar="NAME", default=None, help="cost allocation name (new or existing)")
    command.add_argument("--json", action="store_true", help="print one JSON object with the same figures")
    command.add_argument(
        "--assume-standard",
        action="store_true",
        help="do not ask S3: take every source for a STANDARD object of its recorded size",
    )
    command.add_argument(
        "--latency",
        type=float,
        default=DEFAULT_LATENCY_SECONDS,
        metavar="SECONDS",
        help=f"assumed time of one S3 request, apart from its bytes (default {DEFAULT_LATENCY_SECONDS})",
    )
    command.add_argument(
        "--throughput",
        type=float,
        default=DEFAULT_BYTES_PER_SECOND,
        metavar="BYTES_PER_SECOND",
        help=f"assumed rate of one server-side copy stream (default {DEFAULT_BYTES_PER_SECOND:,})",
    )
    command.add_argument(
        "--bundle-concurrency",
        type=int,
        default=DEFAULT_BUNDLE_CONCURRENCY,
        metavar="N",
        help=f"bundles moving at once: the limit of the pool costalloc_bundles (default {DEFAULT_BUNDLE_CONCURRENCY})",
    )
    command.set_defaults(handler=run_plan)
