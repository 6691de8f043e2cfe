"""Planning at scale on PostgreSQL: the replica refresh and files_out_of_place on millions of rows.

Each measured step runs in a child process (bench.probe), so its peak RSS is the step's own and
not this benchmark's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.bulk_rows import insert_projects, layout
from bench.dataset import stage_settings
from bench.servers import MotoServer, PostgresDatabases
from bench.stats import Spread
from costalloc_pipeline import allocations
from costalloc_pipeline.auth import admin_caller
from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.s3 import s3_client

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
# Projects that fill the repository beyond the measured ones are at most this large.
FILLER_VERSIONS = 100_000


@dataclass(frozen=True)
class ScaleOptions:
    total_versions: int
    # Sizes of the measured projects, in entity versions (= handles).
    project_versions: tuple[int, ...]
    # Runs of each repeatable step (the no-change refresh, files_out_of_place); the median counts.
    rounds: int = 3


@dataclass(frozen=True)
class Probe:
    """What a child process reported for one step: the median run's figures, with the spread of
    the seconds over every run and the highest peak RSS."""

    figures: dict[str, Any]

    @property
    def seconds(self) -> float:
        return float(self.figures["seconds"])

    @property
    def spread(self) -> Spread:
        return Spread.of(self.figures.get("seconds_of_runs", [self.seconds]))

    @property
    def peak_rss_mb(self) -> float:
        return float(self.figures["peak_rss_mb"])


@dataclass
class ScaleResult:
    total_versions: int
    rows_seconds: float = 0.0
    full_refresh: Probe | None = None
    incremental_refresh: Probe | None = None
    # Project size in versions -> its files_out_of_place probe.
    out_of_place: dict[int, Probe] = field(default_factory=dict)


def probe(*args: str) -> Probe:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.probe", *args], cwd=REPOSITORY_ROOT, capture_output=True, text=True
    )
    if finished.returncode != 0:
        raise RuntimeError(f"bench.probe {args[0]} failed: {finished.stderr.strip()[-2000:]}")
    return Probe(json.loads(finished.stdout.strip().splitlines()[-1]))


def probe_rounds(rounds: int, *args: str) -> Probe:
    runs = sorted((probe(*args) for _ in range(rounds)), key=lambda run: run.seconds)
    median = runs[(len(runs) - 1) // 2]
    return Probe(
        {
            **median.figures,
            "seconds_of_runs": [run.seconds for run in runs],
            "peak_rss_mb": max(run.peak_rss_mb for run in runs),
        }
    )


def _assign_all(url: str, settings: Any, project_ids: Sequence[int]) -> None:
    repository = engine_for(url)
    with repository.connect() as conn:
        caller = admin_caller(conn)
    client = s3_client(settings)
    for project_id in project_ids:
        allocations.assign(repository, client, settings, project_id, f"scale-{project_id}", caller)


def run_scale(
    moto: MotoServer, databases: PostgresDatabases, data_dir: Path, options: ScaleOptions, say: Callable[[str], None]
) -> ScaleResult:
    url = databases.fresh()
    try:
        settings = stage_settings(moto.endpoint, url, data_dir, None)
        bootstrap(settings)
        projects = layout(options.project_versions, options.total_versions, FILLER_VERSIONS)
        started = time.perf_counter()
        with engine_for(url).begin() as conn:
            insert_projects(conn, projects, settings.default_bucket)
        result = ScaleResult(total_versions=sum(p.versions for p in projects))
        result.rows_seconds = time.perf_counter() - started
        say(
            f"scale: {result.total_versions} handle versions in {len(projects)} projects "
            f"written in {result.rows_seconds:.1f} s"
        )
        measured = projects[: len(options.project_versions)]
        _assign_all(url, settings, [project.project_id for project in measured])
        result.full_refresh = probe("refresh", url)
        say(f"scale: initial full refresh {result.full_refresh.seconds:.1f} s")
        result.incremental_refresh = probe_rounds(options.rounds, "refresh", url)
        say(f"scale: incremental refresh, nothing changed, {result.incremental_refresh.seconds:.2f} s")
        for project in measured:
            found = probe_rounds(options.rounds, "out-of-place", url, str(project.project_id))
            result.out_of_place[project.versions] = found
            say(f"scale: files_out_of_place of a {project.versions}-version project {found.seconds:.2f} s")
        return result
    finally:
        databases.drop(url)
