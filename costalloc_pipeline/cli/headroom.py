"""`costalloc buckets` (the account's bucket headroom) and `costalloc retire NAME` (retire an unused
cost allocation, its bucket too on request). What they do: costalloc_pipeline/headroom.py and
costalloc_pipeline/allocations/retire.py."""

from __future__ import annotations

import argparse
import json

from costalloc_pipeline.allocations.retire import retire
from costalloc_pipeline.cli.admin import require_initialised
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.headroom import allocation_buckets, measure, settings_quotas
from costalloc_pipeline.runtime import resolve_settings
from costalloc_pipeline.s3 import s3_client


def run_buckets(args: argparse.Namespace) -> int:
    settings = resolve_settings()
    require_initialised(settings)
    with engine_for(settings.repository_url).connect() as conn:
        ours = allocation_buckets(conn)
    headroom = measure(s3_client(settings), settings_quotas(settings), settings.bucket_quota, ours)
    print(json.dumps(headroom.as_json(), indent=2) if args.json else headroom.summary())
    return 0


def run_retire(args: argparse.Namespace) -> int:
    settings = resolve_settings()
    require_initialised(settings)
    retired = retire(
        engine_for(settings.repository_url),
        s3_client(settings),
        args.name,
        delete_the_bucket=args.delete_bucket,
        expire_archives=args.expire_archives,
    )
    print(json.dumps(retired.as_json(), indent=2) if args.json else "\n".join(retired.summary()))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    buckets = commands.add_parser(
        "buckets",
        help="the AWS account's general purpose buckets against its quota",
        description=(
            "Counts the account's general purpose buckets (paginated ListBuckets), reads the quota from "
            "Service Quotas (s3 L-DC2B2D3D: the applied value, else AWS's default, else "
            "COSTALLOC_BUCKET_QUOTA) and prints the buckets used, the quota and its source, the headroom, "
            "the percent used and how many of the buckets are cost allocation buckets. A new cost allocation "
            "is refused (503) when the account is full."
        ),
    )
    buckets.add_argument("--json", action="store_true", help="print the figures as JSON")
    buckets.set_defaults(handler=run_buckets)

    command = commands.add_parser(
        "retire",
        help="remove a cost allocation nobody uses (its bucket too with --delete-bucket)",
        description=(
            "Removes cost allocation NAME when no project is associated with it (ACTIVE or REMOVING), no "
            "AVAILABLE handle, unfinished move or relocation run names its bucket, and its bucket holds "
            "nothing but archives. The bucket is kept unless --delete-bucket; archives in it (the recovery "
            "path of moved files, kept until their lifecycle rule expires them) are deleted early only with "
            "--expire-archives. Exits 2 with the reason when it cannot be retired; nothing is changed then."
        ),
    )
    command.add_argument("name", metavar="NAME", help="the cost allocation's name")
    command.add_argument(
        "--delete-bucket",
        action="store_true",
        help="delete the bucket too (it must hold no archives, or add --expire-archives)",
    )
    command.add_argument(
        "--expire-archives",
        action="store_true",
        help="delete the archives in the bucket now (their files can no longer be recovered); prints how many",
    )
    command.add_argument("--json", action="store_true", help="print what was done as JSON")
    command.set_defaults(handler=run_retire)
