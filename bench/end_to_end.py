"""Once per benchmark: the whole `relocate_project` Dagster job, as the local runner executes it.

It adds what the race leaves out (sensor evaluation, run start-up, the replication and
files_out_of_place assets, the asset check), so it is reported on its own and not used in ratios.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

from bench.dataset import MoveStage


@dataclass(frozen=True)
class JobRun:
    seconds: float | None
    moved_files: int
    # Why the job was not timed (the code location does not import, or the run failed).
    skipped: str | None = None

    @property
    def files_per_second(self) -> float | None:
        return self.moved_files / self.seconds if self.seconds else None


def time_relocate_job(stage: MoveStage) -> JobRun:
    try:
        import dagster as dg

        from costalloc_pipeline.defs.local_runner import LocalRunner
    except Exception as error:  # noqa: BLE001 - any import failure means "not measurable now"
        return JobRun(None, 0, f"the Dagster code location does not import: {type(error).__name__}: {error}")
    with (
        tempfile.TemporaryDirectory(prefix="costalloc-bench-dagster-") as home,
        dg.DagsterInstance.local_temp(home, overrides={"telemetry": {"enabled": False}}) as instance,
    ):
        runner = LocalRunner(stage.settings, instance)
        started = time.perf_counter()
        try:
            results = runner.tick()
        except Exception as error:  # noqa: BLE001 - reported, so the other figures still print
            return JobRun(None, 0, f"the run failed: {type(error).__name__}: {error}")
        seconds = time.perf_counter() - started
    moved = runner.tally.moved_files.get(stage.project_id, 0)
    if not results or moved != stage.files:
        return JobRun(None, moved, f"the sensor's run moved {moved} of {stage.files} files")
    return JobRun(seconds, moved)
