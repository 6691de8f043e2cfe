"""Schedules: rescan every associated project (so nothing is missed), finish what runs left, report
storage, audit."""

from __future__ import annotations

import dagster as dg

from costalloc_pipeline.config import CRON_SETTINGS, Settings
from costalloc_pipeline.defs.assets.recovery import finish_moves
from costalloc_pipeline.defs.jobs import audit_repository, relocate_project, report_storage
from costalloc_pipeline.defs.partitions import PROJECTS, project_partition_key
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.errors import ConfigError


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


def _schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    running = dg.DefaultScheduleStatus.RUNNING
    return [
        dg.schedule(
            job=relocate_project,
            cron_schedule=settings.rescan_cron,
            default_status=running,
            description="Requests a relocation run for every associated project (daily by default).",
        )(rescan_projects),
        dg.ScheduleDefinition(
            name="finish_moves_daily",
            job=finish_moves,
            cron_schedule=settings.finish_cron,
            default_status=running,
            description="Archives sources past their grace period and finishes moves crashed runs left (daily).",
        ),
        dg.ScheduleDefinition(
            name="report_storage_hourly",
            job=report_storage,
            cron_schedule=settings.report_cron,
            default_status=running,
            description="Plots files and bytes per cost allocation bucket over time.",
        ),
        dg.ScheduleDefinition(
            name="audit_repository_daily",
            job=audit_repository,
            cron_schedule=settings.audit_cron,
            default_status=running,
            description="Audits invariants I1-I5 over the whole repository (daily by default).",
        ),
    ]


def definitions(settings: Settings) -> dg.Definitions:
    """The schedules on the settings' crons (read when the location loads, not at import); a cron
    Dagster refuses is a ConfigError naming its variable."""
    for name, variable in CRON_SETTINGS.items():
        try:
            dg.ScheduleDefinition(name="cron_check", job=finish_moves, cron_schedule=getattr(settings, name))
        except dg.DagsterInvalidDefinitionError:
            raise ConfigError(
                f"{variable} must be a cron expression of 5 fields such as '0 3 * * *', got {getattr(settings, name)!r}"
            ) from None
    return dg.Definitions(schedules=_schedules(settings))
