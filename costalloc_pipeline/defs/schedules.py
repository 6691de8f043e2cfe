"""Schedules: rescan every associated project (so nothing is missed), finish what runs left, report
storage, audit."""

from __future__ import annotations

import os

import dagster as dg

from costalloc_pipeline.defs.assets.recovery import finish_moves
from costalloc_pipeline.defs.jobs import audit_repository, relocate_project, report_storage
from costalloc_pipeline.defs.partitions import PROJECTS, project_partition_key
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase

RESCAN_CRON = os.environ.get("COSTALLOC_RESCAN_CRON", "0 3 * * *")
REPORT_CRON = os.environ.get("COSTALLOC_REPORT_CRON", "0 * * * *")
AUDIT_CRON = os.environ.get("COSTALLOC_AUDIT_CRON", "0 5 * * *")
FINISH_CRON = os.environ.get("COSTALLOC_FINISH_CRON", "30 3 * * *")


@dg.schedule(
    job=relocate_project,
    cron_schedule=RESCAN_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Requests a relocation run for every associated project (daily by default).",
)
def rescan_projects(context: dg.ScheduleEvaluationContext, repository: RepositoryDatabase) -> list[dg.RunRequest]:
    associated = [project_partition_key(p) for p in repository.associated_projects()]
    # The sensor adds partitions; a project it has not seen yet is picked up by its next tick.
    known = set(context.instance.get_dynamic_partitions(PROJECTS))
    stamp = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "now"
    return [
        dg.RunRequest(run_key=f"rescan-{project}-{stamp}", partition_key=project)
        for project in associated
        if project in known
    ]


report_storage_hourly = dg.ScheduleDefinition(
    name="report_storage_hourly",
    job=report_storage,
    cron_schedule=REPORT_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Plots files and bytes per cost allocation bucket over time.",
)

audit_repository_daily = dg.ScheduleDefinition(
    name="audit_repository_daily",
    job=audit_repository,
    cron_schedule=AUDIT_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Audits invariants I1-I5 over the whole repository (daily by default).",
)

finish_moves_daily = dg.ScheduleDefinition(
    name="finish_moves_daily",
    job=finish_moves,
    cron_schedule=FINISH_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Archives sources past their grace period and finishes moves crashed runs left (daily).",
)


defs = dg.Definitions(schedules=[rescan_projects, finish_moves_daily, report_storage_hourly, audit_repository_daily])
