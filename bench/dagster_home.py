"""What the Dagster sections of the benchmark share: a Dagster home of their own, the COSTALLOC_*
environment of a stage's settings for the processes they start (daemon, workers, CLI), those
processes in sessions of their own, and waiting for a project's run to finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import dagster as dg

from costalloc_pipeline.config import Settings

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WORKSPACE = f"""load_from:
  - python_module:
      module_name: costalloc_pipeline.definitions
      attribute: defs
      working_directory: {ROOT}
"""
STOP_SECONDS = 30


class RunFailed(RuntimeError):
    pass


def write_home(home: Path, instance_yaml: str) -> Path:
    """A Dagster home with this instance configuration and a workspace of the code location."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml)
    (home / "workspace.yaml").write_text(WORKSPACE)
    return home


def costalloc_environment(settings: Settings, home: Path, **extra: str) -> dict[str, str]:
    """This process's environment, with the settings as COSTALLOC_* variables and DAGSTER_HOME."""
    variables = {**settings.environment(), "DAGSTER_HOME": str(home), **extra}
    return {**os.environ, **variables}


class Background:
    """A command in a session of its own, its output in a log file; stopped with its children."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.command = list(command)
        self.env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        process = self._process
        if process is None:
            return
        # The session's group is this process and what it started (a daemon's code server and run workers).
        for sent in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sent)
            except ProcessLookupError:
                break
            try:
                process.wait(STOP_SECONDS)
                break
            except subprocess.TimeoutExpired:
                continue
        process.wait()


def finished_run(
    instance: dg.DagsterInstance, partition_key: str, known: set[str], timeout: float, watched: Background
) -> dg.RunRecord:
    """The first run of the partition not in `known` once it has finished; RunFailed otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": partition_key}))
        for record in records:
            run = record.dagster_run
            if run.run_id in known or not run.is_finished:
                continue
            if run.status != dg.DagsterRunStatus.SUCCESS:
                raise RunFailed(f"run {run.run_id} of {partition_key} ended {run.status.value}; see {watched.log_path}")
            return record
        if not watched.running():
            raise RunFailed(f"the process stopped before {partition_key}'s run finished; see {watched.log_path}")
        time.sleep(0.5)
    raise RunFailed(f"no finished run of {partition_key} within {timeout:.0f} s; see {watched.log_path}")


def seconds_of(record: dg.RunRecord) -> tuple[float, float]:
    """(from the run's creation to its end, from its start to its end)."""
    assert record.end_time is not None and record.start_time is not None, "a finished run has both"
    return record.end_time - record.create_timestamp.timestamp(), record.end_time - record.start_time
