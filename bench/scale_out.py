"""Scale-out over Celery workers: the same project moved by 1, 2 and 4 dagster-celery workers.

Every S3 request of the workers goes through a delaying proxy in front of moto (a remote S3's round
trip), and each bundle keeps few copies in flight, so a bundle waits on the network more than on
moto's CPU, as against a real S3: more workers, more bundles at once. Each worker count gets fresh
data (a new repository database, moto emptied, the project seeded and assigned again), a new
Dagster home on PostgreSQL, and its own workers, started with the README's command; the run is
the README's `dagster job execute` with COSTALLOC_EXECUTOR=celery. Files/s are the run's own
(from its start to its success, every step included), one run per worker count.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from celery import Celery
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.dagster_home import ROOT, VENV_BIN, Background, RunFailed, costalloc_environment, seconds_of, write_home
from bench.dataset import discard, prepare_move
from bench.latency_proxy import LatencyProxy
from bench.servers import MotoServer, PostgresDatabases

WORKER_COUNTS = (1, 2, 4)
RABBITMQ_URL = "pyamqp://guest:guest@127.0.0.1:5672//"
READY_SECONDS = 120
RUN_TIMEOUT_SECONDS = 1800
OBJECT_SIZE = 1024
RELOCATION = dg.AssetKey("relocation")


@dataclass(frozen=True)
class ScaleOutOptions:
    files: int
    delay_ms: float
    # Copies in flight per bundle, and files per bundle.
    concurrency: int
    bundle_files: int
    broker_url: str = RABBITMQ_URL


@dataclass(frozen=True)
class ScaleOutResult:
    options: ScaleOutOptions
    # Per worker count: the run's seconds and the files it moved.
    seconds: dict[int, float]
    moved_files: dict[int, int]

    def files_per_second(self, workers: int) -> float:
        return self.moved_files[workers] / self.seconds[workers]

    def speed_up(self, workers: int) -> float:
        return self.files_per_second(workers) / self.files_per_second(min(self.seconds))

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.options.files,
            "delay_ms": self.options.delay_ms,
            "copy_concurrency": self.options.concurrency,
            "bundle_files": self.options.bundle_files,
            "workers": {
                str(workers): {
                    "seconds": self.seconds[workers],
                    "moved_files": self.moved_files[workers],
                    "files_per_second": self.files_per_second(workers),
                    "speed_up": self.speed_up(workers),
                }
                for workers in sorted(self.seconds)
            },
        }

    def lines(self) -> list[str]:
        o = self.options
        out = [
            f"scale-out over Celery workers: a project of {o.files} files in bundles of {o.bundle_files}, "
            f"{o.concurrency} copies in flight per bundle, {o.delay_ms:g} ms added to every S3 request; "
            "one run per worker count, every step of the run included"
        ]
        for workers in sorted(self.seconds):
            out.append(
                f"  {workers} worker{'s' if workers > 1 else ' '} {self.files_per_second(workers):8.1f} files/s "
                f"({self.moved_files[workers]} files in {self.seconds[workers]:.1f} s), "
                f"speed-up {self.speed_up(workers):.2f}x"
            )
        return out


def _instance_yaml(postgres_url: str, pool_limit: int) -> str:
    url = make_url(postgres_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return (
        "telemetry:\n  enabled: false\n"
        f"storage:\n  postgres:\n    postgres_url: {url}\n"
        f"concurrency:\n  pools:\n    default_limit: {pool_limit}\n"
    )


@contextmanager
def _empty_database(admin_url: str, name: str) -> Iterator[str]:
    """A database with no schema, for Dagster's own storage, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _wait_for_workers(broker_url: str, nodes: set[str], workers: list[Background]) -> None:
    app = Celery(broker=broker_url)
    deadline = time.monotonic() + READY_SECONDS
    answered: set[str] = set()
    while time.monotonic() < deadline:
        answered |= {name for reply in app.control.ping(timeout=1) for name in reply}
        if nodes <= answered:
            return
        if not all(worker.running() for worker in workers):
            break
    raise RunFailed(f"Celery workers {sorted(nodes - answered)} did not answer; see {workers[0].log_path.parent}")


def _moved_files(instance: dg.DagsterInstance, run_id: str) -> int:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key == RELOCATION:
            moved = materialization.metadata["moved_files"].value
            assert isinstance(moved, int)
            return moved
    raise RunFailed(f"run {run_id} recorded no relocation")


def _one_count(
    moto: MotoServer,
    databases: PostgresDatabases,
    work_dir: Path,
    options: ScaleOutOptions,
    workers: int,
    proxy: LatencyProxy,
) -> tuple[float, int]:
    stage = prepare_move(moto, databases, work_dir, options.files, OBJECT_SIZE, options.concurrency)
    try:
        settings = stage.settings.with_changes(s3_endpoint_url=proxy.url, bundle_max_files=options.bundle_files)
        with ExitStack() as stack:
            storage = stack.enter_context(_empty_database(databases.admin_url, f"costalloc_bench_dagster_{workers}"))
            home = write_home(work_dir / f"scale-out-{workers}", _instance_yaml(storage, max(WORKER_COUNTS)))
            env = costalloc_environment(
                settings, home, COSTALLOC_EXECUTOR="celery", COSTALLOC_CELERY_BROKER_URL=options.broker_url
            )
            env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
            partition = f"syn{stage.project_id}"
            # The storage's tables made once here, before the workers open the instance; the
            # partition the sensor would add.
            with dg.DagsterInstance.from_config(str(home)) as instance:
                instance.add_dynamic_partitions("projects", [partition])
            started = []
            for number in range(workers):
                command = [
                    str(VENV_BIN / "dagster-celery"),
                    *("worker", "start", "-A", "dagster_celery.app", "-y", str(ROOT / "dagster.celery.yaml")),
                    *("-n", f"scale-{number}", "--", "--concurrency=1"),
                ]
                log = work_dir / f"scale-out-{workers}-worker-{number}.log"
                started.append(stack.enter_context(Background(command, env, log)))
            host = os.uname().nodename
            _wait_for_workers(options.broker_url, {f"scale-{n}@{host}" for n in range(workers)}, started)
            executed = subprocess.run(
                [
                    str(VENV_BIN / "dagster"),
                    *("job", "execute", "-m", "costalloc_pipeline.definitions", "-j", "relocate_project"),
                    *("--tags", json.dumps({"dagster/partition": partition})),
                ],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_SECONDS,
                check=False,
            )
            with dg.DagsterInstance.from_config(str(home)) as instance:
                records = instance.get_run_records()
                if executed.returncode != 0 or not records or not records[0].dagster_run.is_success:
                    raise RunFailed(f"the run over {workers} workers failed: {executed.stderr[-2000:]}")
                _, seconds = seconds_of(records[0])
                return seconds, _moved_files(instance, records[0].dagster_run.run_id)
    finally:
        discard(stage, databases)


def run_scale_out(
    moto: MotoServer,
    databases: PostgresDatabases,
    work_dir: Path,
    options: ScaleOutOptions,
    say: Callable[[str], None],
) -> ScaleOutResult:
    seconds: dict[int, float] = {}
    moved: dict[int, int] = {}
    with LatencyProxy("127.0.0.1", moto.port, options.delay_ms) as proxy:
        for workers in WORKER_COUNTS:
            seconds[workers], moved[workers] = _one_count(moto, databases, work_dir, options, workers, proxy)
            say(f"scale-out over {workers} Celery workers: {moved[workers]} files in {seconds[workers]:.1f} s")
    return ScaleOutResult(options, seconds, moved)
