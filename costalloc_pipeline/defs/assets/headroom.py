"""The account's bucket headroom, checked with every storage report: a WARN from 80 % of the
general purpose bucket quota on, before new cost allocations start to be refused (503). The check
is a spec of the storage report asset (storage_report.py), which measures the headroom once."""

import dagster as dg

from costalloc_pipeline.headroom import WARN_PERCENT, Headroom


def headroom_metadata(headroom: Headroom) -> dict[str, dg.MetadataValue]:
    """Plottable figures, shared by the storage report and this check."""
    return {
        "buckets_used": dg.MetadataValue.int(headroom.used),
        "bucket_quota": dg.MetadataValue.int(headroom.quota.value),
        "bucket_quota_source": dg.MetadataValue.text(headroom.quota.source),
        "bucket_headroom": dg.MetadataValue.int(headroom.headroom),
        "buckets_percent_used": dg.MetadataValue.float(headroom.percent_used),
        "cost_allocation_buckets": dg.MetadataValue.int(headroom.cost_allocation_buckets),
    }


# Checked by the storage report itself, from the listing it makes for its own figures: one
# ListBuckets a report, not one for the report and another for the check.
BUCKET_HEADROOM = dg.AssetCheckSpec(
    "bucket_headroom",
    asset="cost_allocation_storage",
    description=(
        f"The AWS account's general purpose buckets against its quota: WARN from {WARN_PERCENT:.0f} % on "
        "(raise the quota in Service Quotas, s3 L-DC2B2D3D, or retire unused cost allocations)."
    ),
)


def headroom_check_result(headroom: Headroom) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=BUCKET_HEADROOM.name,
        passed=not headroom.near_quota,
        severity=dg.AssetCheckSeverity.WARN,
        description=headroom.summary(),
        metadata=headroom_metadata(headroom),
    )
