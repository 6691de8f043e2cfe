"""A small project's run under a real `dagster-daemon`: from the sensor's run request to the run's
success, with every step in its own process (COSTALLOC_EXECUTOR=multiprocess, Dagster's default
before) and with the executor the location picks by itself (COSTALLOC_EXECUTOR=auto).

One Dagster home (the repository's dagster.yaml: SQLite storage, queued runs) and one repository of
2 x rounds projects of `files` files, assigned one at a time: the daemon's sensor sees each
assignment and requests that project's run; the next project is assigned when the run has ended,
so no two runs share the machine. The daemon restarts between the two settings, on the same home
(the sensor's cursor carries over).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from bench.dagster_home import VENV_BIN, Background, costalloc_environment, finished_run, seconds_of, write_home
from bench.dataset import COST_ALLOCATION, project_spec, stage_settings
from bench.servers import MotoServer, PostgresDatabases
from bench.stats import Spread
from costalloc_pipeline import allocations
from costalloc_pipeline.auth import admin_caller
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.replica.refresh import refresh_entity_replication, refresh_file_replication
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.seed import seed_repository

# The executor settings compared, before and after.
BEFORE, AFTER = "multiprocess", "auto"
SETTINGS = (BEFORE, AFTER)
SMALL_RUN_TARGET = "small run seconds, request to success"
OBJECT_SIZE = 1024
RUN_TIMEOUT_SECONDS = 600
INSTANCE_YAML = (Path(__file__).resolve().parent.parent / "dagster.yaml").read_text()


@dataclass(frozen=True)
class SmallRunResult:
    files: int
    # Per executor setting: seconds from the sensor's run request to the run's success, per run.
    requested: dict[str, list[float]]
    # The same runs from their start (the run worker launched) to their success.
    started: dict[str, list[float]]

    def spread(self, setting: str) -> Spread:
        return Spread.of(self.requested[setting])

    @property
    def chosen(self) -> Spread:
        """The runs with the executor the location picks by itself."""
        return self.spread(AFTER)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "request_to_success_seconds": {setting: self.spread(setting).as_dict() for setting in SETTINGS},
            "start_to_success_seconds": {setting: Spread.of(self.started[setting]).as_dict() for setting in SETTINGS},
        }

    def lines(self) -> list[str]:
        out = [f"small run under dagster-daemon: a project of {self.files} files, sensor's run request to success"]
        for setting in SETTINGS:
            total, own = self.spread(setting), Spread.of(self.started[setting])
            out.append(
                f"  COSTALLOC_EXECUTOR={setting:12s} {total.median:6.1f} s (median of {total.samples}, min "
                f"{total.low:.1f}, max {total.high:.1f}); from the run's start {own.median:.1f} s"
            )
        out.append(f"  {self.spread(BEFORE).median / self.chosen.median:.1f}x faster with the executor auto picks")
        return out


def run_small(
    moto: MotoServer, databases: PostgresDatabases, work_dir: Path, files: int, rounds: int, say: Callable[[str], None]
) -> SmallRunResult:
    moto.reset()
    url = databases.fresh()
    try:
        settings = stage_settings(moto.endpoint, url, work_dir / "small-run-data", None)
        spec = dataclasses.replace(project_spec(files, OBJECT_SIZE), projects=len(SETTINGS) * rounds)
        project_ids = seed_repository(settings, spec).project_ids
        repository = engine_for(url)
        # Replicated beforehand, as a running stack would have it: each run refreshes incrementally.
        refresh_entity_replication(repository, repository)
        refresh_file_replication(repository, repository)
        with repository.connect() as conn:
            caller = admin_caller(conn)
        s3 = s3_client(settings)
        home = write_home(work_dir / "small-run-dagster", INSTANCE_YAML)
        requested: dict[str, list[float]] = {}
        started: dict[str, list[float]] = {}
        daemon_command = [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")]
        # Opened first, so the instance's storage exists before the daemon would create it too.
        with dg.DagsterInstance.from_config(str(home)) as instance:
            for number, setting in enumerate(SETTINGS):
                env = costalloc_environment(settings, home, COSTALLOC_EXECUTOR=setting)
                log = work_dir / f"small-run-daemon-{setting}.log"
                with Background(daemon_command, env, log) as daemon:
                    for project_id in project_ids[number * rounds : (number + 1) * rounds]:
                        known = {record.dagster_run.run_id for record in instance.get_run_records()}
                        allocations.assign(repository, s3, settings, project_id, COST_ALLOCATION, caller)
                        record = finished_run(instance, f"syn{project_id}", known, RUN_TIMEOUT_SECONDS, daemon)
                        total, own = seconds_of(record)
                        requested.setdefault(setting, []).append(total)
                        started.setdefault(setting, []).append(own)
                        say(f"small run, COSTALLOC_EXECUTOR={setting}: {total:.1f} s ({own:.1f} s once started)")
        return SmallRunResult(files, requested, started)
    finally:
        databases.drop(url)
