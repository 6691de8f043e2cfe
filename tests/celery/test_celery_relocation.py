"""A project's relocation over two Celery workers: COSTALLOC_EXECUTOR=celery, the README's commands
(workers started with `dagster-celery worker start`, the run with `dagster job execute`), the pool
`costalloc_bundles` bounding the bundles of both workers, and a clean audit afterwards.

The broker is real (RabbitMQ by default, COSTALLOC_TEST_CELERY_BROKER_URL for another) and must answer;
Dagster's storage is PostgreSQL, which the workers reach through the run's instance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from celery import Celery
from helpers.backends import postgresql_only
from kombu import Connection
from sqlalchemy.engine import make_url

from costalloc_pipeline import allocations
from costalloc_pipeline.auth import admin_caller
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.defs.assets.relocation import BUNDLE_POOL
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.seed import SeedSpec, seed_repository

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BROKER_URL = os.environ.get("COSTALLOC_TEST_CELERY_BROKER_URL", "pyamqp://guest:guest@127.0.0.1:5672//")
WORKERS = ("bundles-a", "bundles-b")
# One slot of the bundle pool for all runs and workers: two workers could run two bundles at once.
POOL_LIMIT = 1
READY_SECONDS = 60


@dataclass(frozen=True)
class CeleryStack:
    settings: Settings
    home: Path
    env: dict[str, str]
    # Celery node names of the workers, as each records them: name@host.
    nodes: frozenset[str]


def _instance_yaml(postgres_url: str) -> str:
    url = make_url(postgres_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return (
        "telemetry:\n  enabled: false\n"
        f"storage:\n  postgres:\n    postgres_url: {url}\n"
        f"concurrency:\n  pools:\n    default_limit: {POOL_LIMIT}\n"
    )


def _environment(settings: Settings, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        **settings.environment(),
        "COSTALLOC_EXECUTOR": "celery",
        "COSTALLOC_CELERY_BROKER_URL": BROKER_URL,
        "DAGSTER_HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _broker_reachable() -> None:
    try:
        with Connection(BROKER_URL, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:  # noqa: BLE001 - any failure to reach it is a test failure
        pytest.fail(f"the Celery broker is required for these tests and is unreachable at {BROKER_URL}: {error}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # `worker start` runs celery as its child: the session's group holds both.
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(20)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until_ready(nodes: set[str], processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    app = Celery(broker=BROKER_URL)
    deadline = time.monotonic() + READY_SECONDS
    answered: set[str] = set()
    while time.monotonic() < deadline:
        answered |= {name for reply in app.control.ping(timeout=1) for name in reply}
        if nodes <= answered:
            return
        if any(process.poll() is not None for process in processes):
            break
    tails = "\n".join(log.read_text()[-2000:] for log in logs)
    pytest.fail(f"Celery workers {sorted(nodes - answered)} did not answer within {READY_SECONDS} s:\n{tails}")


@pytest.fixture
def celery_stack(settings: Settings, empty_postgres_url: str, tmp_path: Path) -> Iterator[CeleryStack]:
    """Two Celery workers (one task at a time each) on the broker, and a Dagster home on PostgreSQL."""
    _broker_reachable()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(_instance_yaml(empty_postgres_url))
    # The storage's tables made once here: each worker's start opens the instance too.
    dg.DagsterInstance.from_config(str(home)).dispose()
    settings = settings.with_changes(bundle_max_files=4)
    env = _environment(settings, home)
    host = os.uname().nodename
    processes: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"{name}.log" for name in WORKERS]
    try:
        for name, log_path in zip(WORKERS, logs, strict=True):
            command = [
                str(BIN / "dagster-celery"),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(ROOT / "dagster.celery.yaml"),
                "-n",
                name,
                "--",
                "--concurrency=1",
            ]
            with open(log_path, "ab") as log:
                processes.append(
                    subprocess.Popen(
                        command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        nodes = {f"{name}@{host}" for name in WORKERS}
        _wait_until_ready(nodes, processes, logs)
        yield CeleryStack(settings, home, env, frozenset(nodes))
    finally:
        for process in processes:
            _stop(process)


BUNDLE_STEP = "relocation.move_files_bundle"
ONE_PROJECT = SeedSpec(projects=1, folders_per_project=2, files_per_folder=6, versions_per_file=2, max_size=2048)


def _records(instance: dg.DagsterInstance, run_id: str) -> list[dg.EventLogEntry]:
    return [record.event_log_entry for record in instance.get_records_for_run(run_id, limit=10_000).records]


def _most_at_once(entries: list[dg.EventLogEntry]) -> int:
    """The most bundle steps that were running at one instant, from their start and end events."""
    changes: list[tuple[float, int]] = []
    for entry in entries:
        event = entry.dagster_event
        if event is None or not (entry.step_key or "").startswith(BUNDLE_STEP):
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            changes.append((entry.timestamp, 1))
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            changes.append((entry.timestamp, -1))
    running = most = 0
    # An end and a start at the same instant: the end first.
    for _, change in sorted(changes):
        running += change
        most = max(most, running)
    return most


@postgresql_only
def test_bundles_run_on_both_workers_within_the_pool_and_the_audit_is_clean(celery_stack: CeleryStack) -> None:
    settings = celery_stack.settings
    project = seed_repository(settings, ONE_PROJECT).project_ids[0]
    repository = engine_for(settings.repository_url)
    with repository.connect() as conn:
        caller = admin_caller(conn)
    allocations.assign(repository, s3_client(settings), settings, project, "genomics", caller)
    # The partition the sensor would add; the run itself is the README's command.
    with dg.DagsterInstance.from_config(str(celery_stack.home)) as instance:
        instance.add_dynamic_partitions("projects", [f"syn{project}"])
    executed = subprocess.run(
        [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "costalloc_pipeline.definitions",
            "-j",
            "relocate_project",
            "--tags",
            json.dumps({"dagster/partition": f"syn{project}"}),
        ],
        env=celery_stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert executed.returncode == 0, executed.stdout[-3000:] + executed.stderr[-3000:]

    with dg.DagsterInstance.from_config(str(celery_stack.home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        entries = _records(instance, run.run_id)
        # Each task records the worker that executed it (dagster-celery's engine event).
        workers = {
            entry.step_key: entry.dagster_event.engine_event_data.metadata["Celery worker"].value
            for entry in entries
            if entry.dagster_event is not None
            and entry.dagster_event.is_engine_event
            and "Celery worker" in entry.dagster_event.engine_event_data.metadata
        }
        bundles = {step: node for step, node in workers.items() if step and step.startswith(BUNDLE_STEP)}
        assert len(bundles) >= 4
        assert set(bundles.values()) == celery_stack.nodes
        # The pool held: every bundle's task was sent at once, to two free workers, and still they
        # ran one at a time; the run claimed the pool's slot and gave it back.
        assert _most_at_once(entries) == POOL_LIMIT
        pool = instance.event_log_storage.get_concurrency_info(BUNDLE_POOL)
        assert (pool.slot_count, pool.active_slot_count) == (POOL_LIMIT, 0)

    verified = subprocess.run(
        [str(BIN / "costalloc"), "verify"],
        env=celery_stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "no violations" in verified.stdout
