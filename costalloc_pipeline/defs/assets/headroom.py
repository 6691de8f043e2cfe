"""The account's bucket headroom, checked with every storage report: a WARN from 80 % of the
general purpose bucket quota on, before new cost allocations start to be refused (503)."""

import dagster as dg

from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.defs.resources.settings import CostAllocSettings
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


@dg.asset_check(
    # By key: the storage report imports this module's metadata.
    asset=dg.AssetKey("cost_allocation_storage"),
    description=(
        f"The AWS account's general purpose buckets against its quota: WARN from {WARN_PERCENT:.0f} % on "
        "(raise the quota in Service Quotas, s3 L-DC2B2D3D, or retire unused cost allocations)."
    ),
)
def bucket_headroom(
    repository: RepositoryDatabase, s3: RepositoryS3, settings: CostAllocSettings
) -> dg.AssetCheckResult:
    headroom = s3.bucket_headroom(repository.cost_allocation_buckets(), settings.bucket_quota)
    return dg.AssetCheckResult(
        passed=not headroom.near_quota,
        severity=dg.AssetCheckSeverity.WARN,
        description=headroom.summary(),
        metadata=headroom_metadata(headroom),
    )


defs = dg.Definitions(asset_checks=[bucket_headroom])
