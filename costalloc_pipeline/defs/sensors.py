"""The sensor that turns association changes into project partitions and relocation runs. The
decision is changes.decide (pure); this passes Dagster's state in and the decision out."""

from __future__ import annotations

import dagster as dg

from costalloc_pipeline import changes
from costalloc_pipeline.defs.jobs import relocate_project
from costalloc_pipeline.defs.partitions import PROJECTS, project_partition_key, projects, projects_with_partitions
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase


def _requested_before(context: dg.SensorEvaluationContext, rereads: list[changes.Change]) -> set[str]:
    """Run keys of re-read changes that already have a run."""
    if not rereads:
        return set()
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/run_key": [change.run_key for change in rereads]})
    )
    return {record.dagster_run.tags["dagster/run_key"] for record in records}


@dg.sensor(
    job=relocate_project,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds newly associated projects as partitions and requests one relocation run per change.",
)
def cost_allocation_changes(context: dg.SensorEvaluationContext, repository: RepositoryDatabase) -> dg.SensorResult:
    high_water = int(context.cursor) if context.cursor else 0
    read = repository.changes_since(high_water)
    decision = changes.decide(
        read,
        high_water,
        partitions=projects_with_partitions(context.instance.get_dynamic_partitions(PROJECTS)),
        requested_before=_requested_before(context, changes.rereads(read, high_water)),
    )
    # Partitions are only added: an unassigned project keeps its partition and with it its history.
    requests = [projects.build_add_request([project_partition_key(p) for p in decision.add_projects])]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=run.run_key, partition_key=project_partition_key(run.project_id))
            for run in decision.runs
        ],
        dynamic_partitions_requests=requests if decision.add_projects else [],
        cursor=str(decision.cursor),
    )


defs = dg.Definitions(sensors=[cost_allocation_changes])
