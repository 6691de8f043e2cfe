"""What the bill will show: files and bytes in each cost allocation bucket and in the default bucket."""

from dataclasses import dataclass

import dagster as dg
from sqlalchemy import Engine, func, select

from costalloc_pipeline.placement import load_placement
from costalloc_pipeline.resources.databases import Database
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


def bucket_usage(repository: Engine) -> list[BucketUsage]:
    """The live repository's AVAILABLE S3 handles per managed bucket: default first, then by name."""
    with repository.connect() as conn:
        placement = load_placement(conn)
        allocations = conn.execute(
            select(cost_allocation.c.id, cost_allocation.c.name, cost_allocation.c.bucket).order_by(
                cost_allocation.c.name
            )
        ).all()
        projects = dict(
            conn.execute(
                select(cost_allocation_project.c.cost_allocation_id, func.count())
                .where(cost_allocation_project.c.state == AssociationState.ACTIVE.value)
                .group_by(cost_allocation_project.c.cost_allocation_id)
            ).all()
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
        usage.append(BucketUsage(allocation.name, allocation.bucket, projects.get(allocation.id, 0), count, size))
    return usage


def storage_metadata(usage: list[BucketUsage]) -> dict[str, dg.MetadataValue]:
    """Plottable numbers: `files:<name>` and `bytes:<name>` per cost allocation; the default bucket and
    the totals use keys without a colon, so no allocation name can collide with them."""
    default, allocated = usage[0], usage[1:]
    metadata: dict[str, dg.MetadataValue] = {
        "default_bucket_files": dg.MetadataValue.int(default.files),
        "default_bucket_bytes": dg.MetadataValue.int(default.bytes),
        "allocated_files": dg.MetadataValue.int(sum(entry.files for entry in allocated)),
        "allocated_bytes": dg.MetadataValue.int(sum(entry.bytes for entry in allocated)),
        "total_files": dg.MetadataValue.int(sum(entry.files for entry in usage)),
        "total_bytes": dg.MetadataValue.int(sum(entry.bytes for entry in usage)),
    }
    for entry in allocated:
        metadata[f"files:{entry.cost_allocation}"] = dg.MetadataValue.int(entry.files)
        metadata[f"bytes:{entry.cost_allocation}"] = dg.MetadataValue.int(entry.bytes)
    metadata["buckets"] = dg.MetadataValue.table(
        [
            dg.TableRecord(
                {
                    "cost_allocation": entry.cost_allocation or "(default bucket)",
                    "bucket": entry.bucket,
                    "active_projects": entry.active_projects,
                    "files": entry.files,
                    "bytes": entry.bytes,
                }
            )
            for entry in usage
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("cost_allocation", "string"),
                dg.TableColumn("bucket", "string"),
                dg.TableColumn("active_projects", "int"),
                dg.TableColumn("files", "int"),
                dg.TableColumn("bytes", "int"),
            ]
        ),
    )
    return metadata


@dg.asset(
    group_name="reports",
    kinds={"sql"},
    description=(
        "Files and bytes of AVAILABLE handles in each cost allocation bucket and in the default bucket, "
        "from the live repository: what the bill will show. Stores nothing; the numbers are plotted over time."
    ),
)
def cost_allocation_storage(repository: Database) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=storage_metadata(bucket_usage(repository.engine)))
