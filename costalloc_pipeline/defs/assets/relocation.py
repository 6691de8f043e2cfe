"""The `relocation` asset: a project's misplaced files moved into its target bucket, bundle by bundle.

A graph-backed asset: plan bundles (a DynamicOut bounded in number), move each bundle under a
concurrency pool (DESIGN.md section 4), then sum up what moved. The plan and every bundle record an
observation of the project's partition (misplaced files and bytes, moved bytes, percent done), so
the UI shows the project falling toward zero while the run goes on.
"""

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import dagster as dg
import pandas as pd

from costalloc_pipeline.defs.assets.progress import describe, progress_metadata
from costalloc_pipeline.defs.partitions import project_id_of, projects
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.defs.resources.settings import CostAllocSettings
from costalloc_pipeline.mover import run
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.context import MoveContext, move_context
from costalloc_pipeline.mover.lease import LeaseHeld
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.mover.plan import candidates_of
from costalloc_pipeline.mover.run import BundleBounds
from costalloc_pipeline.placement.progress import Progress
from costalloc_pipeline.removal import finish_removal_when_placed

BUNDLE_POOL = "costalloc_bundles"
# The key of the graph asset below (named after its function), which its ops observe.
RELOCATION = dg.AssetKey("relocation")
MOVE_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@dataclass(frozen=True)
class BundleWork:
    """One bundle's handles, and the project's progress when the run planned it."""

    handle_ids: list[int]
    before: Progress


def _context(
    context: dg.OpExecutionContext, settings: CostAllocSettings, repository: RepositoryDatabase, s3: RepositoryS3
) -> MoveContext:
    """The run's move context: the Dagster run id is the run id of the project's lease."""
    domain = settings.to_settings(repository.url, repository.url, None)
    project_id = project_id_of(context.partition_key)
    return move_context(domain, repository.engine, s3.get_client(), project_id, context.run_id)


def _observe(context: dg.OpExecutionContext, progress: Progress) -> None:
    context.log_event(
        dg.AssetObservation(asset_key=RELOCATION, partition=context.partition_key, metadata=progress_metadata(progress))
    )
    context.log.info(describe(progress))


def _bounds(settings: CostAllocSettings) -> BundleBounds:
    return BundleBounds(settings.bundle_max_files, settings.bundle_max_bytes, settings.max_bundles)


def _log_result(context: dg.OpExecutionContext, what: str, result: BundleResult) -> None:
    context.log.info(
        f"{what}: moved {result.moved_files} files ({result.moved_bytes} bytes), reused {result.reused_copies} "
        f"copies, archived {result.archived_objects} objects, {result.changed_meanwhile} changed meanwhile, "
        f"{len(result.failed)} failed, skipped {dict(result.skipped)}"
    )
    for handle_id, error in list(result.failed.items())[:20]:
        context.log.warning(f"handle {handle_id}: {error}")


def _finish_removal(context: dg.OpExecutionContext, ctx: MoveContext) -> bool:
    """After the run: an unassigned project whose files are all back leaves its allocation."""
    removed = finish_removal_when_placed(ctx.repository, ctx.project_id)
    if removed:
        context.log.info(f"project {ctx.project_id} is back in the default bucket and left its cost allocation")
    return removed


@dg.op(out=dg.DynamicOut(BundleWork), retry_policy=MOVE_RETRY)
def plan_relocation(
    context: dg.OpExecutionContext,
    settings: CostAllocSettings,
    repository: RepositoryDatabase,
    s3: RepositoryS3,
    files_out_of_place: pd.DataFrame,
) -> Iterator[dg.DynamicOutput[BundleWork]]:
    """Take the project's lease, archive what earlier runs left past its grace period, then split
    the dataset into bounded bundles."""
    ctx = _context(context, settings, repository, s3)
    try:
        # A run toward the project's old target stops at its next repoint: wait for it that long.
        run.begin(ctx, wait_seconds=settings.lease_seconds)
    except LeaseHeld as held:
        context.log.warning(f"{held.reason}: this run moves nothing")
        return
    try:
        resumed, plan = run.plan(ctx, candidates_of(files_out_of_place), _bounds(settings))
    except BaseException:
        run.end(ctx)
        raise
    if not plan.bundles:
        # Nothing for bundle ops to do, and the summary op may not run: give the lease back now.
        run.end(ctx)
        _finish_removal(context, ctx)
    if resumed.archived_objects or resumed.sources_still_referenced:
        _log_result(context, "archived the sources of earlier moves", resumed)
    context.log.info(
        f"{len(files_out_of_place)} misplaced handles in {len(plan.bundles)} bundles; "
        f"{plan.deferred_files} handles ({plan.deferred_bytes} bytes) deferred to the next run"
    )
    [before] = repository.progress([ctx.project_id])
    _observe(context, before)
    for bundle in plan.bundles:
        yield dg.DynamicOutput(BundleWork(bundle.handle_ids, before), mapping_key=f"bundle_{bundle.index}")


@dg.op(pool=BUNDLE_POOL, retry_policy=MOVE_RETRY)
def move_files_bundle(
    context: dg.OpExecutionContext,
    settings: CostAllocSettings,
    repository: RepositoryDatabase,
    s3: RepositoryS3,
    bundle: BundleWork,
) -> BundleResult:
    result = move_bundle(_context(context, settings, repository, s3), bundle.handle_ids)
    _log_result(context, f"bundle of {len(bundle.handle_ids)} handles", result)
    if result.stopped:
        context.log.warning(f"bundle stopped: {result.stopped}")
    _observe(context, repository.run_progress(bundle.before, context.run_id))
    return result


@dg.op
def summarize_relocation(
    context: dg.OpExecutionContext,
    settings: CostAllocSettings,
    repository: RepositoryDatabase,
    s3: RepositoryS3,
    results: list,
) -> dg.Output:
    ctx = _context(context, settings, repository, s3)
    run.end(ctx)
    removed = _finish_removal(context, ctx)
    total = BundleResult()
    for result in results:
        total = total.merge(result)
    metadata = {
        "moved_files": dg.MetadataValue.int(total.moved_files),
        "moved_bytes": dg.MetadataValue.int(total.moved_bytes),
        "reused_copies": dg.MetadataValue.int(total.reused_copies),
        "archived_objects": dg.MetadataValue.int(total.archived_objects),
        "archives_pending": dg.MetadataValue.int(total.archives_pending),
        "sources_still_referenced": dg.MetadataValue.int(total.sources_still_referenced),
        "changed_meanwhile": dg.MetadataValue.int(total.changed_meanwhile),
        "failed_files": dg.MetadataValue.int(len(total.failed)),
        "bundles": dg.MetadataValue.int(len(results)),
        "left_its_allocation": dg.MetadataValue.bool(removed),
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
def relocation(files_out_of_place: pd.DataFrame) -> Any:  # a graph body returns Dagster's output handle
    return summarize_relocation(plan_relocation(files_out_of_place).map(move_files_bundle).collect())


defs = dg.Definitions(assets=[relocation])
