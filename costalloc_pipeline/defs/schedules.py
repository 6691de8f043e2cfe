"""Schedules: rescan every associated project (so nothing is missed), finish what runs left, report
storage, audit."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from costalloc_pipeline.config import CRON_SETTINGS, Settings
from costalloc_pipeline.defs.assets.recovery import finish_moves
from costalloc_pipeline.defs.jobs import audit_repository, relocate_project, report_storage
from costalloc_pipeline.defs.partitions import PROJECTS, project_partition_key
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.errors import ConfigError

RUNNING = dg.DefaultScheduleStatus.RUNNING


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


def _on_cron(settings: Settings, field: str, build: Callable[[str], dg.ScheduleDefinition]) -> dg.ScheduleDefinition:
    """The schedule `build` makes on the setting's cron; a cron Dagster refuses is a ConfigError
    naming its variable."""
    cron: str = getattr(settings, field)
    try:
        return build(cron)
    except dg.DagsterInvalidDefinitionError:
        raise ConfigError(
            f"{CRON_SETTINGS[field]} must be a cron expression of 5 fields such as '0 3 * * *', got {cron!r}"
        ) from None


def _of_job(
    name: str, job: dg.JobDefinition | dg.UnresolvedAssetJobDefinition, description: str
) -> Callable[[str], dg.ScheduleDefinition]:
    """A schedule that launches `job`, on the cron it is given."""
    return lambda cron: dg.ScheduleDefinition(
        name=name, job=job, cron_schedule=cron, default_status=RUNNING, description=description
    )


def _rescan(cron: str) -> dg.ScheduleDefinition:
    return dg.schedule(
        job=relocate_project,
        cron_schedule=cron,
        default_status=RUNNING,
        description="Requests a relocation run for every associated project (daily by default).",
    )(rescan_projects)


def definitions(settings: Settings) -> dg.Definitions:
    """The schedules on the settings' crons (read when the location loads, not at import)."""
    builds: dict[str, Callable[[str], dg.ScheduleDefinition]] = {
        "rescan_cron": _rescan,
        "finish_cron": _of_job(
            "finish_moves_daily",
            finish_moves,
            "Archives sources past their grace period and finishes moves crashed runs left (daily).",
        ),
        "report_cron": _of_job(
            "report_storage_hourly", report_storage, "Plots files and bytes per cost allocation bucket over time."
        ),
        "audit_cron": _of_job(
            "audit_repository_daily",
            audit_repository,
            "Audits invariants I1-I5 over the whole repository (daily by default).",
        ),
    }
    return dg.Definitions(schedules=[_on_cron(settings, field, build) for field, build in builds.items()])
