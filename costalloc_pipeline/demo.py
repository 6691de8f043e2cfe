"""`make demo`: the whole flow on the embedded default, with no services.

Seeds a small repository, assigns two projects through the REST API, lets the sensor request the
relocation runs and executes them on a real Dagster instance, unassigns one project again, and
ends when every check passes. Exits non-zero when an invariant of DESIGN.md section 4 is broken.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import uvicorn
from sqlalchemy import func, select

from costalloc_pipeline.api import create_app
from costalloc_pipeline.audit import audit
from costalloc_pipeline.billing.report import storage_report
from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.cli.billing import storage_lines
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.defs.local_runner import LocalRunner, Tally
from costalloc_pipeline.dry_run.assignment import plan_assignment
from costalloc_pipeline.dry_run.report import text_lines
from costalloc_pipeline.dry_run.timing import (
    DEFAULT_BUNDLE_CONCURRENCY,
    DEFAULT_BYTES_PER_SECOND,
    DEFAULT_LATENCY_SECONDS,
)
from costalloc_pipeline.embedded import free_port, start_embedded_s3
from costalloc_pipeline.placement.progress import project_progress
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import (
    FileStatus,
    MetadataType,
    MoveState,
    files,
    move_ledger,
)
from costalloc_pipeline.seed import SeedReport, SeedSpec, seed_repository

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "data" / "demo"
STACK = "demo"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


class Api:
    """The REST API served by uvicorn on a local port, called over HTTP like curl would."""

    def __init__(self, settings: Settings, token: str) -> None:
        self.port = free_port()
        self.token = token
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def bytes_per_bucket(settings: Settings) -> dict[str, tuple[int, int]]:
    with engine_for(settings.repository_url).connect() as conn:
        rows = conn.execute(
            select(files.c.bucket_name, func.count(), func.coalesce(func.sum(files.c.content_size), 0))
            .where(files.c.status == FileStatus.AVAILABLE.value, files.c.metadata_type == MetadataType.S3.value)
            .group_by(files.c.bucket_name)
            .order_by(files.c.bucket_name)
        ).all()
    return {bucket: (count, int(size)) for bucket, count, size in rows}


def external_snapshot(s3: S3Client, bucket: str) -> dict[str, tuple[str, str]]:
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: (o["ETag"], o.get("StorageClass", "STANDARD")) for o in listing}


def run_demo(workdir: Path) -> int:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    dagster_home = workdir / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)

    data_dir = workdir / "data"
    server = start_embedded_s3(data_dir)
    say(f"started the embedded S3 (moto's server) on {server.endpoint}")
    try:
        return _demo(Settings(data_dir=data_dir, s3_endpoint_url=server.endpoint, stack=STACK))
    finally:
        server.stop()


def _demo(settings: Settings) -> int:
    token = bootstrap(settings).admin_token
    if token is None:
        say(f"{settings.data_dir} was set up before: the demo needs a fresh folder")
        return 1
    report = seed_repository(
        settings, SeedSpec(projects=4, folders_per_project=2, files_per_folder=12, versions_per_file=2)
    )
    say(
        f"seeded {len(report.project_ids)} projects, {report.handles} handles, {report.objects} objects "
        f"({report.object_bytes} bytes); shared handles, same-key pairs and "
        f"{len(report.external_handle_ids)} external handles"
    )
    s3 = s3_client(settings)
    external_before = external_snapshot(s3, report.external_bucket)
    before = bytes_per_bucket(settings)
    first, second = report.project_ids[0], report.project_ids[1]
    driver = LocalRunner(settings, report=say)

    # What the first assignment will do, before it is made (`costalloc plan`): it writes nothing.
    say(f"costalloc plan syn{first} --to genomics:")
    plan = plan_assignment(
        settings, s3, first, "genomics", DEFAULT_LATENCY_SECONDS, DEFAULT_BYTES_PER_SECOND, DEFAULT_BUNDLE_CONCURRENCY
    )
    for line in text_lines(plan):
        print(f"    {line}")
    with Api(settings, token) as api:
        for project, name in ((first, "genomics"), (second, "imaging")):
            status, body = api.call("POST", f"/entity/syn{project}/costAllocation", {"name": name})
            say(f"POST /entity/syn{project}/costAllocation {{name: {name}}} -> {status} bucket {body.get('bucket')}")
            if status not in (200, 201):
                say(f"unexpected answer: {body}")
                return 1
        driver.tick()
        status, _ = api.call("DELETE", f"/entity/syn{first}/costAllocation")
        say(f"DELETE /entity/syn{first}/costAllocation -> {status} (files go back to the default bucket)")
        driver.tick()
        driver.tick()
        status, _ = api.call("GET", f"/entity/syn{first}/costAllocation")
        say(f"GET /entity/syn{first}/costAllocation -> {status} (the association is gone once its files are back)")

    say("a second run of every associated project must find nothing to do")
    moved = sum(driver.tally.moved_files.values())
    for partition in driver.instance.get_dynamic_partitions("projects"):
        driver.run(partition, {"costalloc/demo": "rerun"})
    moved_again = sum(driver.tally.moved_files.values()) - moved
    after = bytes_per_bucket(settings)
    return _finish(settings, s3, report, driver.tally, before, after, external_before, moved_again)


def _finish(
    settings: Settings,
    s3: S3Client,
    report: SeedReport,
    tally: Tally,
    before: dict[str, tuple[int, int]],
    after: dict[str, tuple[int, int]],
    external_before: dict[str, tuple[str, str]],
    moved_again: int,
) -> int:
    repository = engine_for(settings.repository_url)
    with repository.connect() as conn:
        placement = load_placement(conn)
        progress = {p: project_progress(conn, p, placement) for p in report.project_ids[:2]}
        violations = audit(conn, s3, archive_grace_seconds=settings.archive_grace_seconds)
        ledger_rows = conn.execute(select(func.count()).select_from(move_ledger)).scalar_one()
        awaiting_archive = conn.execute(
            select(func.count()).select_from(move_ledger).where(move_ledger.c.state == MoveState.REPOINTED.value)
        ).scalar_one()
    print()
    print(
        f"{'project':>10} {'files moved':>12} {'bytes moved':>12} {'archived':>9} {'conflicts':>10} {'misplaced':>10}"
    )
    for project, item in progress.items():
        print(
            f"{project:>10} {tally.moved_files.get(project, 0):>12} {tally.moved_bytes.get(project, 0):>12} "
            f"{tally.archived.get(project, 0):>9} {item.conflict_files:>10} {item.misplaced_files:>10}"
        )
    print()
    print(f"{'bucket':<40} {'files before':>12} {'bytes before':>12} {'files after':>12} {'bytes after':>12}")
    for bucket in sorted(set(before) | set(after)):
        b, a = before.get(bucket, (0, 0)), after.get(bucket, (0, 0))
        print(f"{bucket:<40} {b[0]:>12} {b[1]:>12} {a[0]:>12} {a[1]:>12}")
    print()
    problems = [f"{kind}: {violations.counts[kind]} (first ids {ids})" for kind, ids in violations.found.items()]
    if external_snapshot(s3, report.external_bucket) != external_before:
        problems.append("I5: an object outside repository-managed storage changed")
    if moved_again:
        problems.append(f"I6: a second run moved {moved_again} files again")
    if any(item.misplaced_files for item in progress.values()):
        problems.append("a check did not pass: files are still misplaced")
    say(f"audited {violations.checked_handles} handles and {ledger_rows} ledger rows")
    say(
        f"{awaiting_archive} moved files keep their old object live for the grace period "
        f"(COSTALLOC_ARCHIVE_GRACE_SECONDS={settings.archive_grace_seconds}), so late readers are safe; "
        "the project's next run, or `costalloc resume`, archives them once it is over"
    )
    if problems:
        for problem in problems:
            say(f"INVARIANT BROKEN: {problem}")
        return 1
    say("every check passed; invariants I1-I6 hold")
    say("costalloc storage (what the bill will show, by storage class):")
    for line in storage_lines(storage_report(settings)):
        print(f"    {line}")
    on_demo_data = f"COSTALLOC_DATA_DIR={settings.data_dir.relative_to(ROOT)} COSTALLOC_STACK={STACK}"
    say(f"audit it again at any time: {on_demo_data} .venv/bin/costalloc verify")
    say(f"see these runs in the Dagster UI: {on_demo_data} DAGSTER_HOME={dagster_home_of(settings)} make dev")
    return 0


def dagster_home_of(settings: Settings) -> Path:
    """The demo's Dagster instance, beside its data folder (run_demo sets it up)."""
    return (settings.data_dir.parent / "dagster_home").relative_to(ROOT)


def main() -> None:
    sys.exit(run_demo(DEMO_DIR))


if __name__ == "__main__":
    main()
