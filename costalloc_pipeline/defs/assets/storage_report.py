"""What the bill will show: files and bytes in each cost allocation bucket and in the default bucket."""

import dagster as dg

from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.storage import BucketUsage


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
def cost_allocation_storage(repository: RepositoryDatabase) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=storage_metadata(repository.bucket_usage()))


defs = dg.Definitions(assets=[cost_allocation_storage])
