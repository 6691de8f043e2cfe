"""Planning at scale on PostgreSQL and MariaDB: the replica refresh, files_out_of_place and the
no_misplaced_files check on millions of rows, after an incremental refresh that changed many.

The repository is written in two parts. The filler projects first, spread over a year, then a
full refresh of the replica. Then, as a busy day would: the measured projects arrive (their
entities, versions and handles, all new) and every handle of the first filler project changes;
an incremental refresh brings the replica up to date, and the planning steps run on what it left
(its statistics included: replica/statistics.py decides whether it analyzed). The repository's own
statistics are those of before the change, as on a server whose autovacuum has not caught up.

Each measured step runs in a child process (bench.probe), so its peak RSS is the step's own and
not this benchmark's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from bench.bulk_rows import (
    Buckets,
    ProjectRows,
    Stamps,
    analyze_repository,
    insert_project_files,
    insert_projects,
    layout,
    touch_handles,
)
from bench.dataset import stage_settings
from bench.mariadb_databases import MariaDBDatabases
from bench.plans import explain_planning
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
BACKENDS = ("postgresql", "mariadb")
DEFAULT_MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/mysql?charset=utf8mb4"
# The buffer pool of the MariaDB runs in BENCHMARKS.md; with the server's default 128 MB, InnoDB read a
# replica of 3 million versions from disk page by page.
DEFAULT_MARIADB_BUFFER_POOL_MB = 4096


@dataclass(frozen=True)
class ScaleOptions:
    total_versions: int
    # Sizes of the measured projects, in entity versions.
    project_versions: tuple[int, ...]
    # Runs of each repeatable step (the no-change refresh, files_out_of_place, the check); the median counts.
    rounds: int = 3
    backends: tuple[str, ...] = ("postgresql",)
    mariadb_url: str = DEFAULT_MARIADB_URL
    # InnoDB's buffer pool for the run, at least (MariaDBDatabases); 0 leaves the server's.
    mariadb_buffer_pool_mb: int = DEFAULT_MARIADB_BUFFER_POOL_MB


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

    @property
    def rows_per_second(self) -> float:
        return float(self.figures["rows"]) / self.seconds


@dataclass(frozen=True)
class Change:
    """What changed in the repository between the full and the incremental refresh."""

    versions_added: int
    handles_updated: int
    seconds: float


@dataclass
class ScaleResult:
    backend: str
    total_versions: int
    rows_seconds: float = 0.0
    full_refresh: Probe | None = None
    change: Change | None = None
    # The incremental refreshes that find nothing new (before the change), and the one after it.
    changed_refresh: Probe | None = None
    incremental_refresh: Probe | None = None
    # The plans of the largest project's files_out_of_place queries (rows, sharing), after the
    # changed refresh.
    plan: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Project size in versions -> its files_out_of_place probe.
    out_of_place: dict[int, Probe] = field(default_factory=dict)
    # The no_misplaced_files check of the largest measured project.
    check: Probe | None = None
    # The server's InnoDB buffer pool during the run (MariaDB only).
    buffer_pool_mb: int | None = None

    def as_dict(self) -> dict[str, Any]:
        def figures(found: Probe | None) -> dict[str, Any] | None:
            return found.figures if found is not None else None

        return {
            "total_versions": self.total_versions,
            "rows_seconds": self.rows_seconds,
            "full_refresh": figures(self.full_refresh),
            "change": vars(self.change) if self.change is not None else None,
            "changed_refresh": figures(self.changed_refresh),
            "incremental_refresh": figures(self.incremental_refresh),
            "plan": self.plan,
            "files_out_of_place": {str(size): found.figures for size, found in self.out_of_place.items()},
            "no_misplaced_files": figures(self.check),
            "buffer_pool_mb": self.buffer_pool_mb,
        }


class Databases(Protocol):
    def fresh(self) -> str: ...

    def drop(self, name_or_url: str) -> None: ...


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


def _write(engine: Engine, projects: Sequence[ProjectRows], numbers: Sequence[int], default_bucket: str) -> Buckets:
    """Every project entity, and the files of projects[n] for n in `numbers`, over the past year."""
    with engine.begin() as conn:
        buckets = insert_projects(conn, projects, default_bucket, numbers)
    with engine.begin() as conn:
        analyze_repository(conn)
    return buckets


def _change(engine: Engine, projects: Sequence[ProjectRows], measured: int, buckets: Buckets) -> Change:
    """The measured projects arrive, and every handle of the first filler project changes."""
    started = time.perf_counter()
    with engine.begin() as conn:
        insert_project_files(conn, projects, range(measured), buckets, Stamps.now())
        updated = touch_handles(conn, projects[measured]) if len(projects) > measured else 0
    return Change(sum(p.versions for p in projects[:measured]), updated, time.perf_counter() - started)


@contextmanager
def _databases(backend: str, postgresql: PostgresDatabases, options: ScaleOptions) -> Iterator[Databases]:
    if backend == "postgresql":
        yield postgresql
        return
    with MariaDBDatabases(options.mariadb_url, options.mariadb_buffer_pool_mb) as mariadb:
        yield mariadb


def run_scale(
    moto: MotoServer, databases: PostgresDatabases, data_dir: Path, options: ScaleOptions, say: Callable[[str], None]
) -> list[ScaleResult]:
    results = []
    for backend in options.backends:
        with _databases(backend, databases, options) as backend_databases:
            result = _run_backend(backend, moto, backend_databases, data_dir, options, say)
            if isinstance(backend_databases, MariaDBDatabases):
                result.buffer_pool_mb = backend_databases.buffer_pool_mb
            results.append(result)
    return results


def _run_backend(
    backend: str,
    moto: MotoServer,
    databases: Databases,
    data_dir: Path,
    options: ScaleOptions,
    say: Callable[[str], None],
) -> ScaleResult:
    url = databases.fresh()
    try:
        settings = stage_settings(moto.endpoint, url, data_dir, None)
        bootstrap(settings)
        engine = engine_for(url)
        projects = layout(options.project_versions, options.total_versions, FILLER_VERSIONS)
        measured = len(options.project_versions)
        result = ScaleResult(backend=backend, total_versions=sum(p.versions for p in projects))
        started = time.perf_counter()
        buckets = _write(engine, projects, range(measured, len(projects)), settings.default_bucket)
        result.rows_seconds = time.perf_counter() - started
        say(
            f"scale on {backend}: {result.total_versions - sum(p.versions for p in projects[:measured])} handle "
            f"versions in {len(projects) - measured} projects written in {result.rows_seconds:.1f} s"
        )
        _assign_all(url, settings, [project.project_id for project in projects[:measured]])
        result.full_refresh = probe("refresh", url)
        say(f"scale on {backend}: initial full refresh {result.full_refresh.seconds:.1f} s")
        # Before the change: right after it, every refresh re-reads what changed within its overlap.
        result.incremental_refresh = probe_rounds(options.rounds, "refresh", url)
        say(f"scale on {backend}: incremental refresh, nothing changed, {result.incremental_refresh.seconds:.2f} s")
        result.change = _change(engine, projects, measured, buckets)
        say(
            f"scale on {backend}: {result.change.versions_added} versions added, "
            f"{result.change.handles_updated} handles updated in {result.change.seconds:.1f} s"
        )
        result.changed_refresh = probe("refresh", url)
        say(
            f"scale on {backend}: incremental refresh after the change {result.changed_refresh.seconds:.1f} s, "
            f"analyzed {result.changed_refresh.figures['analyzed']}"
        )
        largest = max(projects[:measured], key=lambda project: project.versions).project_id
        result.plan = explain_planning(url, largest)
        say(f"scale on {backend}: plans of the largest project {result.plan}")
        for project in projects[:measured]:
            found = probe_rounds(options.rounds, "out-of-place", url, str(project.project_id))
            result.out_of_place[project.versions] = found
            say(f"scale on {backend}: files_out_of_place of a {project.versions}-version project {found.seconds:.2f} s")
        result.check = probe_rounds(options.rounds, "check", url, str(largest))
        say(f"scale on {backend}: no_misplaced_files of the largest project {result.check.seconds:.2f} s")
        return result
    finally:
        databases.drop(url)
