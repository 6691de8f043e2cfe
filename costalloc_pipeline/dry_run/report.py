"""The dry run as text for people and as one JSON object for machines: the same figures."""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from typing import Any

from costalloc_pipeline.billing.prices import GB
from costalloc_pipeline.dry_run.assignment import DryRun
from costalloc_pipeline.dry_run.shares import Share
from costalloc_pipeline.naming import format_entity_id


def _bytes(size: int) -> str:
    # Decimal units, as AWS bills storage.
    return f"{size:,} bytes ({size / GB:.3g} GB)" if abs(size) >= 10**6 else f"{size:,} bytes"


def _dollars(value: float) -> str:
    """Cents from a dollar up; below, three significant digits (a request costs a fraction of a cent)."""
    if value == 0:
        return "$0"
    sign, size = ("-" if value < 0 else ""), abs(value)
    decimals = 2 if size >= 1 else 2 - math.floor(math.log10(size))
    return f"{sign}${size:,.{decimals}f}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _share(share: Share) -> str:
    return f"  {share.name}: {_count(share.files, 'file')}, {_count(share.objects, 'object')}, {_bytes(share.bytes)}"


def _heading(plan: DryRun) -> list[str]:
    project = format_entity_id(plan.project_id)
    target = plan.target
    if target.name is None:
        what = f"unassign {project} (its files go back to the default bucket {target.bucket})"
    else:
        state = "exists" if target.exists else "would be created with the cost allocation"
        what = f"assign {project} to cost allocation {target.name} (bucket {target.bucket}, {state})"
    now = f"cost allocation {target.current_name}" if target.current_name else "no cost allocation"
    return [
        f"dry run: {what}; nothing is written",
        f"now: {project} has {now}; its files belong in {target.current_bucket}",
        "handles: read from the live repository (a run refreshes the replica first, so this is what it would plan)",
        "storage classes: "
        + (
            "as ListObjectsV2 lists the source objects"
            if plan.looked_at_s3
            else "assumed STANDARD for every live source (--assume-standard: S3 not asked)"
        ),
    ]


def _moves(plan: DryRun) -> list[str]:
    files = sum(share.files for share in plan.by_source_bucket)
    objects = sum(share.objects for share in plan.by_source_bucket)
    size = sum(share.bytes for share in plan.by_source_bucket)
    lines = [f"to move: {_count(files, 'file')}, {_count(objects, 'object')}, {_bytes(size)}", " by source bucket:"]
    lines += [_share(share) for share in plan.by_source_bucket]
    lines += [" by storage class:", *(_share(share) for share in plan.by_storage_class)]
    lines += [f"skipped by the mover: {why}: {count}" for why, count in plan.skipped.items()]
    lines += [f"would fail: {why}: {count}" for why, count in plan.failed.items()]
    files, size = plan.conflict_totals
    lines.append(f"conflicts: {_count(files, 'file')}, {_bytes(size)}, stay where they are")
    lines += [
        f"  shared with {format_entity_id(c.other_project_id)} ({_count(c.files, 'file')}, {_bytes(c.bytes)}), "
        f"whose files belong in {c.other_target_bucket}, {c.reason}; first: {', '.join(map(str, c.first_handle_ids))}"
        for c in plan.conflicts
    ]
    return lines


def _work(plan: DryRun) -> list[str]:
    s, r, b = plan.settings, plan.requests, plan.bundles
    runs = len(b.per_run)
    return [
        f"bundles: {b.total}, in {_count(runs, 'run')}"
        + (f" ({', '.join(map(str, b.per_run))}: a run takes at most {s.max_bundles})" if runs > 1 else "")
        + "; "
        f"largest {_count(b.largest_files, 'file')}, {_bytes(b.largest_bytes)} "
        f"(bounds: {s.bundle_max_files} files, {s.bundle_max_bytes:,} bytes, {s.max_bundles} bundles a run)",
        f"S3 requests, copies: CopyObject {r.copy_object}, CreateMultipartUpload {r.create_multipart_upload}, "
        f"UploadPartCopy {r.upload_part_copy}, CompleteMultipartUpload {r.complete_multipart_upload}, "
        f"HeadObject {r.head_object}, GetObject {r.get_object} "
        f"(multipart above {s.multipart_threshold:,} bytes, parts of {s.multipart_part_size:,})",
        f"S3 requests, look at the objects: ListObjectsV2 {r.list_objects_min} to {r.list_objects_max} "
        "(one page per 1,000 dense keys, one per key at worst)",
        f"S3 requests, archives ({s.archive_storage_class}): CopyObject {r.archive_copy_object}, "
        f"CreateMultipartUpload {r.archive_create_multipart_upload}, UploadPartCopy {r.archive_upload_part_copy}, "
        f"CompleteMultipartUpload {r.archive_complete_multipart_upload}, HeadObject {r.archive_head_object}, "
        f"DeleteObjects {r.archive_delete_objects} and ListObjectsV2 {r.archive_list_objects} (versioned buckets: "
        "the noncurrent version is the archive), "
        f"bucket versioning and lifecycle reads {r.bucket_state_reads}",
    ]


def _money(plan: DryRun) -> list[str]:
    c, s = plan.costs, plan.settings
    lines = [
        f"one-off cost: {_dollars(c.one_off)} (copy requests {_dollars(c.copy_requests)}, archive requests "
        f"{_dollars(c.archive_requests)}, listing {_dollars(c.list_requests)}, HEAD/GET {_dollars(c.read_requests)}, "
        f"archive storage for {s.archive_retention_days} days {_dollars(c.archive_storage)}, both copies live "
        f"during the {s.archive_grace_seconds:,} s grace period {_dollars(c.grace_storage)})",
        f"monthly storage change: {_dollars(c.monthly_live)} lasting, {_dollars(c.monthly_during_retention)} during "
        "the retention period (archive copies included)",
    ]
    for change in c.buckets:
        line = f"  {change.bucket}: live {change.live_bytes:+,} bytes ({_dollars(change.live_month)}/month)"
        if change.archive_bytes:
            line += (
                f", archived +{change.archive_bytes:,} bytes in {s.archive_storage_class} "
                f"({_dollars(change.archive_month)}/month during retention)"
            )
        lines.append(line)
    t = plan.time
    lines.append(
        f"time: about {plan.seconds:,.1f} s, assuming {t.latency_seconds} s per request and "
        f"{t.bytes_per_second:,.0f} bytes/s per copy stream, {t.copy_concurrency} copies at once in a bundle "
        f"(COSTALLOC_COPY_CONCURRENCY), {t.bundle_concurrency} bundles at once"
    )
    return lines


def text_lines(plan: DryRun) -> list[str]:
    return [*_heading(plan), *_moves(plan), *_work(plan), *_money(plan)]


def as_json(plan: DryRun) -> dict[str, Any]:
    s, c = plan.settings, plan.costs
    files, size = plan.conflict_totals
    return {
        "project": format_entity_id(plan.project_id),
        "writes": "none",
        "target": asdict(plan.target),
        "read_from": "live repository",
        "storage_classes": "listed" if plan.looked_at_s3 else "assumed STANDARD",
        "to_move": {
            "files": sum(share.files for share in plan.by_source_bucket),
            "objects": sum(share.objects for share in plan.by_source_bucket),
            "bytes": sum(share.bytes for share in plan.by_source_bucket),
            "by_source_bucket": [asdict(share) for share in plan.by_source_bucket],
            "by_storage_class": [asdict(share) for share in plan.by_storage_class],
        },
        "skipped": plan.skipped,
        "failed": plan.failed,
        "conflicts": {"files": files, "bytes": size, "by_project": [asdict(conflict) for conflict in plan.conflicts]},
        "bundles": {**asdict(plan.bundles), "total": plan.bundles.total},
        "requests": asdict(plan.requests),
        "costs": {
            **{f.name: getattr(c, f.name) for f in fields(c) if f.name != "buckets"},
            "one_off": c.one_off,
            "monthly_live": c.monthly_live,
            "monthly_during_retention": c.monthly_during_retention,
            "buckets": [asdict(change) for change in c.buckets],
        },
        "time": {**asdict(plan.time), "seconds": plan.seconds},
        "price_table": s.price_table or "default (us-east-1 list prices)",
        "settings": {
            name: getattr(s, name)
            for name in (
                "bundle_max_files",
                "bundle_max_bytes",
                "max_bundles",
                "copy_concurrency",
                "multipart_threshold",
                "multipart_part_size",
                "archive_storage_class",
                "archive_retention_days",
                "archive_grace_seconds",
            )
        },
    }
