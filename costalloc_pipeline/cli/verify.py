"""`costalloc verify`: audit invariants I1-I5 and the move ledger over the whole repository.

Exit status 0 when nothing is wrong; 1 on any violation, or when S3 refused a check (nothing can be
vouched for then); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json

from costalloc_pipeline.audit import Violations, audit
from costalloc_pipeline.cli.admin import require_initialised
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.errors import BadRequest
from costalloc_pipeline.runtime import resolve_settings
from costalloc_pipeline.s3 import s3_client

DEFAULT_CONCURRENCY = 64


def report_lines(violations: Violations) -> list[str]:
    scope = "a random sample of" if violations.sampled else "all"
    lines = [
        f"audited {violations.checked_handles} handles ({scope} {violations.managed_handles} AVAILABLE handles "
        f"in repository-managed storage), {violations.checked_archives} archives, "
        f"{violations.checked_ledger_rows} ledger rows"
    ]
    for kind in sorted(violations.counts):
        first = ", ".join(map(str, violations.found[kind]))
        lines.append(f"{kind}: {violations.counts[kind]} (first: {first})")
    total = violations.total
    lines.append("no violations" if total == 0 else f"{total} violation{'s' if total > 1 else ''}")
    return lines


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise BadRequest(f"{name} must be at least 1, got {value}")


def run_verify(args: argparse.Namespace) -> int:
    _positive("--sample", args.sample)
    _positive("--concurrency", args.concurrency)
    settings = resolve_settings()
    require_initialised(settings)
    # One pooled connection per concurrent HEAD.
    s3 = s3_client(settings, max_pool_connections=args.concurrency)
    with engine_for(settings.repository_url).connect() as conn:
        violations = audit(
            conn,
            s3,
            concurrency=args.concurrency,
            read_back=args.read_back,
            sample=args.sample,
            retention_days=settings.archive_retention_days,
            archive_grace_seconds=settings.archive_grace_seconds,
        )
    print(json.dumps(violations.as_json(), indent=2) if args.json else "\n".join(report_lines(violations)))
    return 1 if violations.total else 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser(
        "verify",
        help="audit every handle, archive and ledger row; exit 1 on any violation",
        description=(
            "Checks invariants I1-I5: every AVAILABLE handle in repository-managed storage points at an "
            "object of its size and MD5 that is not archived nor tagged for expiry; archives recorded in "
            "the ledger still exist within their retention; bucket lifecycle rules expire nothing else; "
            "no ledger row outside managed storage and no move left half-done (run `costalloc resume`). "
            "Prints counts and the first offending handle ids; exits 1 on any violation."
        ),
    )
    verify.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="N",
        help="check N random handles and N random archives (plus every handle whose key the ledger archived)",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"concurrent S3 requests (default {DEFAULT_CONCURRENCY})",
    )
    verify.add_argument(
        "--read-back",
        action="store_true",
        help="read objects whose ETag is not an MD5 (multipart uploads) to check their MD5; reads their bytes",
    )
    verify.set_defaults(handler=run_verify)
