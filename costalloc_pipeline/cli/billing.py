"""`costalloc storage` and `costalloc bill`: what the buckets hold and should cost, and what AWS billed.

`storage` reports objects and bytes by storage class per cost allocation and in the default bucket,
with a month's storage at the price table's rates; `--publish` also puts the live figures into
CloudWatch (COSTALLOC_CLOUDWATCH_NAMESPACE). `bill` asks Cost Explorer for a month's cost grouped by
the buckets' cost-allocation tag.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from costalloc_pipeline.billing import cost_explorer
from costalloc_pipeline.billing.aws import cloudwatch_client, cost_explorer_client
from costalloc_pipeline.billing.metrics import publish_storage
from costalloc_pipeline.billing.report import BucketStorage, StorageReport, storage_report
from costalloc_pipeline.buckets import COST_ALLOCATION_TAG
from costalloc_pipeline.cli.admin import require_initialised
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.errors import BadRequest, ConfigError
from costalloc_pipeline.placement.progress import projects_progress
from costalloc_pipeline.runtime import resolve_settings
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.storage import bucket_usage

_NAMESPACE_VARIABLE = "COSTALLOC_CLOUDWATCH_NAMESPACE"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned text columns, numbers (the last three) right-aligned."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    numeric_from = len(widths) - 3
    return [
        "  ".join(
            cell.rjust(width) if column >= numeric_from else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _bucket_rows(entry: BucketStorage) -> list[tuple[str, ...]]:
    name = entry.cost_allocation or "(default bucket)"
    if not entry.classes:
        return [(name, entry.bucket, "-", "0", "0", f"{0:.6f}")]
    return [
        (
            name if index == 0 else "",
            entry.bucket if index == 0 else "",
            c.storage_class,
            str(c.objects),
            str(c.bytes),
            f"{c.monthly_cost:.6f}",
        )
        for index, c in enumerate(entry.classes)
    ]


def storage_lines(report: StorageReport) -> list[str]:
    rows: list[tuple[str, ...]] = [("cost allocation", "bucket", "class", "objects", "bytes", "$/month")]
    for entry in report.buckets:
        rows += _bucket_rows(entry)
    total = report.as_json()
    rows.append(("total", "", "", str(total["objects"]), str(total["bytes"]), f"{total['monthlyCost']:.6f}"))
    source = (
        "the repository's records and the move ledger" if report.source == "repository" else "a listing of the buckets"
    )
    return [*_table(rows), f"(from {source}; storage only, at the price table's rates)"]


def publish(settings: Settings) -> int:
    """Puts the live figures and each associated project's into CloudWatch; how many data."""
    repository = engine_for(settings.repository_url)
    cloudwatch = cloudwatch_client(settings.s3_endpoint_url, settings.s3_region)
    with repository.connect() as conn:
        progress = projects_progress(conn)
    return publish_storage(cloudwatch, settings.cloudwatch_namespace, bucket_usage(repository), progress)


def run_storage(args: argparse.Namespace) -> int:
    settings = resolve_settings()
    if args.publish and not settings.cloudwatch_namespace:
        raise ConfigError(f"--publish needs {_NAMESPACE_VARIABLE} (the CloudWatch namespace); it is empty")
    require_initialised(settings)
    report = storage_report(settings, s3_client(settings) if args.from_s3 else None)
    published = publish(settings) if args.publish else None
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print("\n".join(storage_lines(report)))
    if published is not None:
        # On stderr, so that --json stays one JSON document on stdout.
        print(f"published {published} metrics to CloudWatch namespace {settings.cloudwatch_namespace}", file=sys.stderr)
    return 0


def bill_lines(bill: cost_explorer.Bill) -> list[str]:
    status = "estimated, the month is not closed" if bill.estimated else "final"
    lines = [f"{bill.month}: {cost_explorer.METRIC} by tag {COST_ALLOCATION_TAG} ({status})"]
    if not bill.costs:
        lines.append(f"no costs (is {COST_ALLOCATION_TAG} activated as a cost allocation tag? see --activate-tag)")
    rows = [(cost.cost_allocation or "(untagged)", f"{cost.amount:.2f}", cost.unit) for cost in bill.costs]
    width = max((len(row[0]) for row in rows), default=0)
    amount_width = max((len(row[1]) for row in rows), default=0)
    lines += [f"{name.ljust(width)}  {amount.rjust(amount_width)} {unit}" for name, amount, unit in rows]
    return lines


def run_bill(args: argparse.Namespace) -> int:
    if args.month is None and not args.activate_tag:
        raise BadRequest("give --month YYYY-MM, or --activate-tag")
    month = cost_explorer.parse_month(args.month, dt.datetime.now(dt.UTC).date()) if args.month else None
    settings = resolve_settings()
    ce = cost_explorer_client(settings)
    if args.activate_tag:
        refused = cost_explorer.activate_tag(ce)
        if refused:
            print("\n".join(f"not activated: {reason}" for reason in refused), file=sys.stderr)
            return 1
        print(f"activated {COST_ALLOCATION_TAG} as a cost allocation tag")
    if month is not None:
        bill = cost_explorer.monthly_bill(ce, month)
        print(json.dumps(bill.as_json(), indent=2) if args.json else "\n".join(bill_lines(bill)))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    storage = commands.add_parser(
        "storage",
        help="objects, bytes and monthly cost by storage class per cost allocation",
        description=(
            "Objects and bytes in each cost allocation bucket and in the default bucket, by storage class, "
            "with a month of their storage at the price table's rates (COSTALLOC_PRICE_TABLE). By the "
            "repository's records: AVAILABLE handles are STANDARD, the ledger's unexpired archives are in "
            "the archive class (COSTALLOC_ARCHIVE_STORAGE_CLASS)."
        ),
    )
    storage.add_argument("--json", action="store_true", help="print the report as JSON")
    storage.add_argument(
        "--from-s3",
        action="store_true",
        help="count what S3 lists in each bucket (ListObjectsV2, current objects only) instead of the records",
    )
    storage.add_argument(
        "--publish",
        action="store_true",
        help=(
            "also put bytes, objects and misplaced bytes per allocation and per project into CloudWatch "
            f"(the namespace {_NAMESPACE_VARIABLE})"
        ),
    )
    storage.set_defaults(handler=run_storage)

    bill = commands.add_parser(
        "bill",
        help="a month's cost per cost allocation, from AWS Cost Explorer",
        description=(
            f"The month's {cost_explorer.METRIC} from Cost Explorer, grouped by the buckets' tag "
            f"{COST_ALLOCATION_TAG}; costs of resources without it are '(untagged)'. The tag groups costs only "
            "once it is activated as a cost allocation tag in Billing: --activate-tag does it."
        ),
    )
    bill.add_argument("--month", metavar="YYYY-MM", help="the month, not after the current one")
    bill.add_argument("--json", action="store_true", help="print the bill as JSON")
    bill.add_argument(
        "--activate-tag",
        action="store_true",
        help=f"activate {COST_ALLOCATION_TAG} as a cost allocation tag (needs the account's Billing permissions)",
    )
    bill.set_defaults(handler=run_bill)
