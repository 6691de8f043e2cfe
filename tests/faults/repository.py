"""A repository for the fault and audit tests: projects assigned through the service (so their
buckets are provisioned as in production), handles and their objects in moto's S3, the mover's
context built as the relocation asset builds it, and a way to run the mover in a child process
that dies."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.links import link_to_project
from helpers.rows import s3_file_row
from sqlalchemy import Engine, insert, select

from costalloc_pipeline import allocations
from costalloc_pipeline.archives.locate import archive_records, find_archive
from costalloc_pipeline.audit import Violations, audit
from costalloc_pipeline.auth import admin_caller
from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, new_etag, utcnow
from costalloc_pipeline.mover import claims, lease
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.copier import CopyOptions
from costalloc_pipeline.mover.objects import head
from costalloc_pipeline.s3 import make_s3_client
from costalloc_pipeline.schema.repository import (
    files,
    move_ledger,
)

from .worker import CRASHED_LEASE_SECONDS, build_context

WORKER = Path(__file__).with_name("worker.py")
NO_MULTIPART = CopyOptions(multipart_threshold=5 * 1024**3, part_size=512 * 1024**2)
# moto's server in these tests accepts parts of 256 bytes and more.
SMALL_PARTS = CopyOptions(multipart_threshold=1024, part_size=512)


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


class CopyCounter:
    """Counts a client's CopyObject calls into a target bucket, and its archives (copies onto
    themselves, or objects of its DeleteObjects in a versioned bucket)."""

    def __init__(self, s3: Any) -> None:
        self.counts: Counter = Counter()
        s3.meta.events.register("provide-client-params.s3.CopyObject", self._note)
        s3.meta.events.register("provide-client-params.s3.UploadPartCopy", self._note_part)
        s3.meta.events.register("provide-client-params.s3.DeleteObjects", self._note_deletes)

    def _note_deletes(self, params: dict, **_: Any) -> None:
        self.counts["archive"] += len(params["Delete"]["Objects"])

    def _note(self, params: dict, **_: Any) -> None:
        source = params["CopySource"]
        archive = (source["Bucket"], source["Key"]) == (params["Bucket"], params["Key"])
        self.counts["archive" if archive else "target"] += 1

    def _note_part(self, params: dict, **_: Any) -> None:
        self.counts["part"] += 1

    @property
    def into_target(self) -> int:
        return self.counts["target"]

    @property
    def archives(self) -> int:
        return self.counts["archive"]


@dataclass
class Repo:
    settings: Settings
    engine: Engine
    # Straight to moto's server: the tests' own view of S3, never faulted.
    s3: Any
    entities: Any
    ids: itertools.count
    projects: list[int] = field(default_factory=list)

    def project(self, project_id: int, allocation: str | None = None) -> str:
        """A project, assigned to `allocation` when given; returns its target bucket."""
        self.entities.project(project_id)
        self.projects.append(project_id)
        return self.assign(project_id, allocation) if allocation is not None else self.settings.default_bucket

    def assign(self, project_id: int, allocation: str) -> str:
        """Assign (or re-assign) the project, as the API does; returns its new target bucket."""
        with self.engine.connect() as conn:
            caller = admin_caller(conn)
        return allocations.assign(
            self.engine, self.s3, self.settings, project_id, allocation, caller
        ).cost_allocation.bucket

    def unassign(self, project_id: int) -> None:
        with self.engine.connect() as conn:
            caller = admin_caller(conn)
        allocations.unassign(self.engine, project_id, caller)

    def end_run(self, project_id: int, run_id: str) -> None:
        """The run is over: its claims and lease given back, as a finished run does."""
        claims.release_run(self.engine, run_id)
        lease.release(self.engine, project_id, run_id)

    def add_handle(
        self,
        body: bytes,
        bucket: str | None = None,
        key: str | None = None,
        upload: bool = True,
        project_id: int | None = None,
    ) -> int:
        """A handle of `project_id` (the first project the test made, when None) and its object."""
        handle_id = next(self.ids)
        bucket = bucket or self.settings.default_bucket
        key = key or f"7/{new_etag()}/file{handle_id}.bin"
        if upload:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        with self.engine.begin() as conn:
            conn.execute(insert(files).values(**s3_file_row(handle_id, bucket, key, body)))
        owner = project_id if project_id is not None else (self.projects[0] if self.projects else None)
        if owner is not None:
            link_to_project(self.engine, handle_id, owner)
        return handle_id

    def add_handles(self, count: int, size: int = 300) -> dict[int, bytes]:
        bodies = [bytes([i % 251]) * 7 + f"handle {i} ".encode() * (size // 10) for i in range(count)]
        return {self.add_handle(body): body for body in bodies}

    def handle(self, handle_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(files).where(files.c.id == handle_id)).one()

    def read(self, handle_id: int) -> bytes:
        """The bytes a user gets through the handle now."""
        row = self.handle(handle_id)
        return self.s3.get_object(Bucket=row.bucket_name, Key=row.key)["Body"].read()

    def storage_class(self, bucket: str, key: str) -> str:
        return self.s3.head_object(Bucket=bucket, Key=key).get("StorageClass", "STANDARD")

    def source_archived(self, bucket: str, key: str) -> bool:
        """Whether the object at the key was archived: copied into GLACIER, or (in a versioned
        bucket) deleted, its version left noncurrent."""
        found = head(self.s3, bucket, key)
        return found is None or found.get("StorageClass") == "GLACIER"

    def assert_archive_kept(self, handle_id: int, body: bytes) -> None:
        """The handle's newest archive, found as `costalloc locate` finds it, holds `body`."""
        with self.engine.connect() as conn:
            records = archive_records(conn, handle_id)
        assert records, f"handle {handle_id} has no archive"
        found, _ = find_archive(self.s3, records[0])
        assert found is not None and found["ContentLength"] == len(body), f"handle {handle_id}'s archive is gone"
        etag = found["ETag"].strip('"')
        # An archive copied in parts has a multipart ETag; in GLACIER its bytes cannot be read back here.
        assert etag == md5(body) or "-" in etag, f"handle {handle_id}'s archive holds other bytes"

    def assert_intact(self, originals: dict[int, bytes]) -> None:
        for handle_id, body in originals.items():
            assert self.read(handle_id) == body, f"handle {handle_id} lost its bytes"

    def client(self, endpoint: str | None = None, max_attempts: int = 8) -> Any:
        """A mover's S3 client (standard retries, pooled), to moto or through a proxy."""
        return make_s3_client(endpoint or self.settings.s3_endpoint_url, "us-east-1", 16, max_attempts)

    def context(
        self,
        project_id: int,
        s3: Any | None = None,
        run_id: str = "run-1",
        copy: CopyOptions = NO_MULTIPART,
        concurrency: int = 4,
        other_repository_urls: tuple[str, ...] = (),
        take_over: bool = True,
        clock: Any = utcnow,
        **overrides: Any,
    ) -> MoveContext:
        return build_context(
            self.settings,
            s3 or self.client(),
            project_id,
            run_id,
            copy,
            concurrency,
            other_repository_urls,
            take_over,
            clock,
            **overrides,
        )

    def audit(self, **options: Any) -> Violations:
        with self.engine.connect() as conn:
            return audit(
                conn, self.client(), concurrency=8, retention_days=self.settings.archive_retention_days, **options
            )

    def ledger_states(self, handle_id: int) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(move_ledger.c.state)
                    .where(move_ledger.c.file_handle_id == handle_id)
                    .order_by(move_ledger.c.id)
                ).scalars()
            )

    def crash(self, project_id: int, handle_ids: list[int], kill_at: str, **options: Any) -> None:
        crash(self.settings, project_id, handle_ids, kill_at, **options)


def crash(
    settings: Settings,
    project_id: int,
    handle_ids: list[int],
    kill_at: str,
    copy: CopyOptions = NO_MULTIPART,
    repoint_batch: int | None = None,
) -> None:
    """Move the bundle in a child process (one copy at a time) that SIGKILLs itself at `kill_at`;
    `repoint_batch`: copies repointed together (the whole bundle at once unless it is small)."""
    spec = {
        "repository_url": settings.repository_url,
        "s3_endpoint": settings.s3_endpoint_url,
        "stack": settings.stack,
        "project_id": project_id,
        "run_id": "crashed-run",
        "handle_ids": handle_ids,
        "kill_at": kill_at,
        "multipart_threshold": copy.multipart_threshold,
        "part_size": copy.part_size,
        "concurrency": 1,
        "overrides": {} if repoint_batch is None else {"repoint_batch": repoint_batch},
    }
    worker = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(spec)], capture_output=True, text=True, timeout=120
    )
    assert worker.returncode == -9, f"the worker was not killed at {kill_at}: {worker.returncode} {worker.stderr}"
    # A dead run's lease lapses, and its claims' hold one lease period later: then the next run may
    # take the project and its keys, as in production.
    time.sleep(2 * CRASHED_LEASE_SECONDS + 0.1)


def make_repo(settings: Settings, entities: Any) -> Repo:
    """A bootstrapped stack (default bucket provisioned) with no handles yet."""
    bootstrap(settings)
    s3 = make_s3_client(settings.s3_endpoint_url, "us-east-1")
    return Repo(settings, engine_for(settings.repository_url), s3, entities, itertools.count(5000))
