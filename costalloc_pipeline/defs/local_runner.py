"""Plays the part of the Dagster daemon for the demo and the tests: evaluates the sensor with its
cursor, applies its partition requests, and executes the runs it requests in process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from costalloc_pipeline.config import Settings
from costalloc_pipeline.defs.jobs import relocate_project
from costalloc_pipeline.defs.location import build_definitions, build_resources
from costalloc_pipeline.defs.partitions import PROJECTS, project_id_of
from costalloc_pipeline.defs.sensors import cost_allocation_changes

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SENSOR_NAME = "cost_allocation_changes"


@dataclass
class Tally:
    """What the runs did, per project."""

    moved_files: dict[int, int] = field(default_factory=dict)
    moved_bytes: dict[int, int] = field(default_factory=dict)
    archived: dict[int, int] = field(default_factory=dict)

    def add(self, project_id: int, summary: dict[str, Any]) -> None:
        self.moved_files[project_id] = self.moved_files.get(project_id, 0) + summary["moved_files"]
        self.moved_bytes[project_id] = self.moved_bytes.get(project_id, 0) + summary["moved_bytes"]
        self.archived[project_id] = self.archived.get(project_id, 0) + summary["archived_objects"]


class LocalRunner:
    """Plays the Dagster daemon: evaluates the sensor and executes the runs it requests."""

    def __init__(
        self,
        settings: Settings,
        instance: dg.DagsterInstance | None = None,
        report: Callable[[str], None] = lambda _: None,
    ) -> None:
        """`instance`: the one DAGSTER_HOME names (or an ephemeral one) when not given."""
        self.settings = settings
        self.say = report
        self.instance = instance or dg.DagsterInstance.get()
        self.definitions = build_definitions(settings)
        self.resources = build_resources(settings)
        self.cursor: str | None = None
        self.tally = Tally()

    def tick(self) -> list[dg.ExecuteInProcessResult]:
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources=self.resources) as context:
            result = cost_allocation_changes(context)
        # The sensor always returns one SensorResult (its signature says so; the decorator's type is wider).
        assert isinstance(result, dg.SensorResult)
        # The sensor only adds partitions (a project's history stays on its partition).
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(PROJECTS, list(request.partition_keys))
            self.say(f"sensor added project partitions {', '.join(request.partition_keys)}")
        self.cursor = result.cursor
        runs = []
        for wanted in result.run_requests or []:
            # The sensor names the partition and the run key of every request it makes.
            assert wanted.partition_key is not None and wanted.run_key is not None
            tags = {"dagster/run_key": wanted.run_key, "dagster/sensor_name": SENSOR_NAME}
            runs.append(self.run(wanted.partition_key, tags))
        return runs

    def run(self, partition: str, tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
        job = self.definitions.resolve_job_def(relocate_project.name)
        self.say(f"run relocate_project for project {partition} ...")
        result = job.execute_in_process(
            instance=self.instance, partition_key=partition, tags=tags or {}, run_config=QUIET
        )
        summary = result.output_for_node("relocation.summarize_relocation")
        self.tally.add(project_id_of(partition), summary)
        checks = result.get_asset_check_evaluations()
        passed = all(check.passed for check in checks)
        self.say(
            f"  moved {summary['moved_files']} files ({summary['moved_bytes']} bytes), archived "
            f"{summary['archived_objects']} sources, {len(summary['failed'])} failed; check "
            + ("passed" if passed else "not passed yet")
        )
        return result
