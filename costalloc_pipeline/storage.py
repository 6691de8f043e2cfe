"""Where the bytes are, by the repository's records: files and bytes of AVAILABLE S3 handles in each
cost allocation bucket and in the default bucket (what the bill will show)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.schema.repository import (
    AssociationState,
    FileStatus,
    MetadataType,
    cost_allocation,
    cost_allocation_project,
    files,
)


@dataclass(frozen=True)
class BucketUsage:
    # None for the default bucket.
    cost_allocation: str | None
    bucket: str
    active_projects: int
    files: int
    bytes: int
    # The cost allocation's id (None for the default bucket): how the REST API names it.
    cost_allocation_id: int | None = None


def bucket_usage(repository: Engine) -> list[BucketUsage]:
    """The live repository's AVAILABLE S3 handles per managed bucket: default first, then by name."""
    with repository.connect() as conn:
        placement = load_placement(conn)
        allocations = conn.execute(
            select(cost_allocation.c.id, cost_allocation.c.name, cost_allocation.c.bucket).order_by(
                cost_allocation.c.name
            )
        ).all()
        projects: dict[int, int] = dict(
            conn.execute(
                select(cost_allocation_project.c.cost_allocation_id, func.count())
                .where(cost_allocation_project.c.state == AssociationState.ACTIVE.value)
                .group_by(cost_allocation_project.c.cost_allocation_id)
            )
            .tuples()
            .all()
        )
        stored = {
            row.bucket_name: (int(row.files), int(row.bytes))
            for row in conn.execute(
                select(
                    files.c.bucket_name,
                    func.count().label("files"),
                    func.coalesce(func.sum(files.c.content_size), 0).label("bytes"),
                )
                .where(
                    files.c.status == FileStatus.AVAILABLE.value,
                    files.c.metadata_type == MetadataType.S3.value,
                    files.c.bucket_name.in_(sorted(placement.managed_buckets)),
                )
                .group_by(files.c.bucket_name)
            )
        }
    default_files, default_bytes = stored.get(placement.default_bucket, (0, 0))
    usage = [BucketUsage(None, placement.default_bucket, 0, default_files, default_bytes)]
    for allocation in allocations:
        count, size = stored.get(allocation.bucket, (0, 0))
        usage.append(
            BucketUsage(allocation.name, allocation.bucket, projects.get(allocation.id, 0), count, size, allocation.id)
        )
    return usage
