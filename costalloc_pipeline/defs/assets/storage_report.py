"""What the bill will show: files and bytes in each cost allocation bucket and in the default bucket,
and which associated projects still have files on their way."""

import dagster as dg

from costalloc_pipeline.defs.assets.headroom import BUCKET_HEADROOM, headroom_check_result, headroom_metadata
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.defs.resources.settings import CostAllocSettings
from costalloc_pipeline.naming import format_entity_id
from costalloc_pipeline.placement.progress import Progress
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


def moving_metadata(usage: list[BucketUsage], progress: list[Progress]) -> dict[str, dg.MetadataValue]:
    """The associated projects with files still outside their target bucket, and how far each is."""
    allocation_of = {entry.bucket: entry.cost_allocation or "(default bucket)" for entry in usage}
    moving = [p for p in progress if p.misplaced_files]
    return {
        "moving_projects": dg.MetadataValue.int(len(moving)),
        "misplaced_bytes": dg.MetadataValue.int(sum(p.misplaced_bytes for p in progress)),
        "projects_moving": dg.MetadataValue.table(
            [
                dg.TableRecord(
                    {
                        "project": format_entity_id(p.project_id),
                        "cost_allocation": allocation_of.get(p.target_bucket, p.target_bucket),
                        "misplaced_files": p.misplaced_files,
                        "misplaced_bytes": p.misplaced_bytes,
                        "failed_files": p.failed_files,
                        "percent_done": p.percent_done,
                    }
                )
                for p in moving
            ],
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn("project", "string"),
                    dg.TableColumn("cost_allocation", "string"),
                    dg.TableColumn("misplaced_files", "int"),
                    dg.TableColumn("misplaced_bytes", "int"),
                    dg.TableColumn("failed_files", "int"),
                    dg.TableColumn("percent_done", "float"),
                ]
            ),
        ),
    }


@dg.asset(
    group_name="reports",
    kinds={"sql"},
    check_specs=[BUCKET_HEADROOM],
    description=(
        "Files and bytes of AVAILABLE handles in each cost allocation bucket and in the default bucket, "
        "from the live repository: what the bill will show; and the associated projects whose files are "
        "still moving. Stores nothing; the numbers are plotted over time, and published as CloudWatch metrics "
        "when COSTALLOC_CLOUDWATCH_NAMESPACE is set."
    ),
)
def cost_allocation_storage(
    context: dg.AssetExecutionContext, repository: RepositoryDatabase, s3: RepositoryS3, settings: CostAllocSettings
) -> dg.MaterializeResult:
    usage = repository.bucket_usage()
    progress = repository.associated_progress()
    if published := repository.publish_storage_metrics(usage, progress):
        context.log.info(f"published {published} CloudWatch metrics")
    # The account's bucket headroom too (one ListBuckets): plotted beside the buckets it counts, and
    # judged by the report's own check.
    headroom = s3.bucket_headroom(repository.cost_allocation_buckets(), settings.bucket_quota)
    return dg.MaterializeResult(
        metadata={**storage_metadata(usage), **moving_metadata(usage, progress), **headroom_metadata(headroom)},
        check_results=[headroom_check_result(headroom)],
    )


defs = dg.Definitions(assets=[cost_allocation_storage])
