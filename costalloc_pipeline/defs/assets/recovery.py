"""The `finish_moves` job: what `costalloc resume` does, daily, for every project. Archives past
their grace period belong to the project's next run, but a project that left its allocation has
no next run; this job archives those, and finishes moves that crashed runs left half-done."""

import dagster as dg

from costalloc_pipeline.defs.resources.databases import Database
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.defs.resources.settings import CostAllocSettings
from costalloc_pipeline.mover.recovery import resume


@dg.op(description="Finishes interrupted moves of runs that are over and archives sources past their grace period.")
def finish_interrupted_moves(
    context: dg.OpExecutionContext, settings: CostAllocSettings, repository: Database, s3: RepositoryS3
) -> dg.Output:
    outcomes = resume(settings.to_settings(repository.url, repository.url, None), s3.get_client(), None)
    for outcome in outcomes:
        context.log.info(outcome.summary())
    return dg.Output(
        None,
        metadata={
            "projects": dg.MetadataValue.int(len(outcomes)),
            "archived_objects": dg.MetadataValue.int(sum(o.archived.archived_objects for o in outcomes)),
            "moved_files": dg.MetadataValue.int(sum(o.moved.moved_files for o in outcomes)),
            "left_alone": dg.MetadataValue.int(sum(1 for o in outcomes if o.busy)),
        },
    )


@dg.job(description="Finishes what relocation runs left: archives past their grace period, moves a crash cut short.")
def finish_moves() -> None:
    finish_interrupted_moves()


defs = dg.Definitions(jobs=[finish_moves])
