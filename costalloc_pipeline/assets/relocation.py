"""The `relocation` asset: a project's misplaced files moved into its target bucket, bundle by bundle.

A graph-backed asset: plan bundles (a DynamicOut bounded in number), move each bundle under a
concurrency pool (DESIGN.md section 4), then sum up what moved.
"""

from dataclasses import asdict

import dagster as dg
import pandas as pd

from costalloc_pipeline import service
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.misplaced import load_placement
from costalloc_pipeline.mover.bundle import BundleResult, MoveContext, move_bundle
from costalloc_pipeline.mover.copier import CopyOptions
from costalloc_pipeline.mover.handles import Target
from costalloc_pipeline.mover.plan import Candidate, plan_bundles
from costalloc_pipeline.mover.resume import resume_interrupted
from costalloc_pipeline.partitions import projects
from costalloc_pipeline.resources.databases import Database
from costalloc_pipeline.resources.s3 import RepositoryS3
from costalloc_pipeline.resources.settings import CostAllocSettings

BUNDLE_POOL = "costalloc_bundles"
MOVE_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def move_context(
    context: dg.OpExecutionContext, settings: CostAllocSettings, repository: Database, s3: RepositoryS3
) -> MoveContext:
    project_id = int(context.partition_key)
    placement = load_placement(repository.engine)
    target = service.target_bucket_for_project(repository.engine, project_id)
    return MoveContext(
        repository=repository.engine,
        other_repositories=tuple(engine_for(url) for url in settings.other_repository_urls),
        s3=s3.get_client(),
        run_id=context.run_id,
        project_id=project_id,
        target=Target(target.bucket, target.storage_location_id),
        managed_buckets=placement.managed_buckets,
        copy=CopyOptions(settings.multipart_threshold, settings.multipart_part_size),
        archive_storage_class=settings.archive_storage_class,
        concurrency=settings.copy_concurrency,
    )


def _log_result(context: dg.OpExecutionContext, what: str, result: BundleResult) -> None:
    context.log.info(
        f"{what}: moved {result.moved_files} files ({result.moved_bytes} bytes), reused {result.reused_copies} "
        f"copies, archived {result.archived_objects} objects, {result.changed_meanwhile} changed meanwhile, "
        f"{len(result.failed)} failed, skipped {dict(result.skipped)}"
    )
    for handle_id, error in list(result.failed.items())[:20]:
        context.log.warning(f"handle {handle_id}: {error}")


@dg.op(out=dg.DynamicOut(list), retry_policy=MOVE_RETRY)
def plan_relocation(
    context: dg.OpExecutionContext,
    settings: CostAllocSettings,
    repository: Database,
    s3: RepositoryS3,
    files_out_of_place: pd.DataFrame,
):
    """Finish interrupted moves, then split the dataset into bounded bundles."""
    resumed = resume_interrupted(move_context(context, settings, repository, s3), int(context.partition_key))
    if resumed.archived_objects or resumed.sources_still_referenced:
        _log_result(context, "resumed interrupted moves", resumed)
    candidates = [
        Candidate(int(row.file_handle_id), row.bucket_name, row.key, int(row.content_size or 0))
        for row in files_out_of_place.itertuples(index=False)
    ]
    plan = plan_bundles(candidates, settings.bundle_max_files, settings.bundle_max_bytes, settings.max_bundles)
    context.log.info(
        f"{len(candidates)} misplaced handles in {len(plan.bundles)} bundles; "
        f"{plan.deferred_files} handles ({plan.deferred_bytes} bytes) deferred to the next run"
    )
    for bundle in plan.bundles:
        yield dg.DynamicOutput(bundle.handle_ids, mapping_key=f"bundle_{bundle.index}")


@dg.op(pool=BUNDLE_POOL, retry_policy=MOVE_RETRY)
def move_files_bundle(
    context: dg.OpExecutionContext,
    settings: CostAllocSettings,
    repository: Database,
    s3: RepositoryS3,
    bundle: list,
) -> BundleResult:
    result = move_bundle(move_context(context, settings, repository, s3), bundle)
    _log_result(context, f"bundle of {len(bundle)} handles", result)
    return result


@dg.op
def summarize_relocation(context: dg.OpExecutionContext, results: list) -> dg.Output:
    total = BundleResult()
    for result in results:
        total = total.merge(result)
    metadata = {
        "moved_files": dg.MetadataValue.int(total.moved_files),
        "moved_bytes": dg.MetadataValue.int(total.moved_bytes),
        "reused_copies": dg.MetadataValue.int(total.reused_copies),
        "archived_objects": dg.MetadataValue.int(total.archived_objects),
        "sources_still_referenced": dg.MetadataValue.int(total.sources_still_referenced),
        "changed_meanwhile": dg.MetadataValue.int(total.changed_meanwhile),
        "failed_files": dg.MetadataValue.int(len(total.failed)),
        "bundles": dg.MetadataValue.int(len(results)),
    }
    summary = asdict(total)
    summary["skipped"] = dict(total.skipped)
    return dg.Output(summary, metadata=metadata)


@dg.graph_asset(
    partitions_def=projects,
    group_name="relocation",
    kinds={"s3", "sql"},
    description="Moves the project's misplaced files into its target bucket: copy, verify, repoint, archive.",
)
def relocation(files_out_of_place: pd.DataFrame):
    return summarize_relocation(plan_relocation(files_out_of_place).map(move_files_bundle).collect())
