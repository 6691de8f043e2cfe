"""The sensor that turns association changes into project partitions and relocation runs."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import select

from costalloc_pipeline.jobs import relocate_project
from costalloc_pipeline.partitions import projects
from costalloc_pipeline.resources.databases import Database
from costalloc_pipeline.schema.repository import (
    AssociationState,
    cost_allocation_change,
    cost_allocation_project,
)

# Change ids are allocated before commit, so a later id can become visible first; re-reading a
# short window below the cursor catches those, and run keys keep re-read changes from running twice.
LOOKBACK = 100
MAX_CHANGES_PER_TICK = 1000


def run_key(change_id: int) -> str:
    return f"association-change-{change_id}"


def _requested_before(context: dg.SensorEvaluationContext, changes: list) -> set[str]:
    """Run keys of re-read changes that already have a run."""
    if not changes:
        return set()
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/run_key": [run_key(c.id) for c in changes]})
    )
    return {record.dagster_run.tags["dagster/run_key"] for record in records}


@dg.sensor(
    job=relocate_project,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds newly associated projects as partitions and requests one relocation run per change.",
)
def cost_allocation_changes(context: dg.SensorEvaluationContext, repository: Database) -> dg.SensorResult:
    high_water = int(context.cursor) if context.cursor else 0
    with repository.engine.connect() as conn:
        changes = conn.execute(
            select(cost_allocation_change.c.id, cost_allocation_change.c.project_id, cost_allocation_change.c.state)
            .where(cost_allocation_change.c.id > max(0, high_water - LOOKBACK))
            .order_by(cost_allocation_change.c.id)
            .limit(MAX_CHANGES_PER_TICK)
        ).all()
        associated = {
            str(project_id) for project_id in conn.execute(select(cost_allocation_project.c.project_id)).scalars()
        }
    # Only the latest change of each project matters: it says where the files belong now.
    latest = {change.project_id: change for change in changes}
    existing = set(context.instance.get_dynamic_partitions(projects.name))
    to_add = sorted({str(p) for p, c in latest.items() if c.state != AssociationState.REMOVED.value} - existing)
    to_delete = sorted(
        {str(p) for p, c in latest.items() if c.state == AssociationState.REMOVED.value} & existing - associated
    )
    wanted = [change for change in latest.values() if change.state != AssociationState.REMOVED.value]
    requested = _requested_before(context, [c for c in wanted if c.id <= high_water])
    run_requests = [
        dg.RunRequest(run_key=run_key(change.id), partition_key=str(change.project_id))
        for change in wanted
        if run_key(change.id) not in requested
    ]
    requests = []
    if to_add:
        requests.append(projects.build_add_request(to_add))
    if to_delete:
        requests.append(projects.build_delete_request(to_delete))
    new_high_water = max([high_water, *(change.id for change in changes)])
    return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=requests, cursor=str(new_high_water))
