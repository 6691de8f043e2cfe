"""A mover worker in a real child process that SIGKILLs itself at a chosen point of the protocol.

Run as `python worker.py '<json spec>'`. Kill points (`kill_at`):
- `target-copy:N`: right after the N-th CopyObject into the target bucket answered (the copy exists,
  the ledger does not know it);
- `before-repoint`: when the repoint UPDATE is about to run (the ledger says COPIED);
- `after-repoint`: at the first statement after the repoint's transaction committed (REPOINTED,
  nothing archived yet);
- `archive:N`: right after the N-th archive request answered (part of the bundle archived; with
  small repoint batches, while later copies of the bundle are still to be made): an archive copy
  onto itself, or a batch of DeleteObjects in a versioned bucket;
- `part-copy:N`: right after the N-th UploadPartCopy answered (a multipart copy half done);
- `complete:N`: right after the N-th CompleteMultipartUpload answered (the copy exists, with a
  multipart ETag, and the ledger does not know it).
Exits 3 when the kill point is never reached.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

from sqlalchemy import Engine, delete, event

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.context import Clock, MoveContext, move_context
from costalloc_pipeline.mover.copier import CopyOptions
from costalloc_pipeline.mover.lease import acquire
from costalloc_pipeline.s3 import make_s3_client
from costalloc_pipeline.schema.repository import relocation_lease

ARCHIVE_STORAGE_CLASS = "GLACIER"
CRASHED_LEASE_SECONDS = 1


def build_context(
    settings: Settings,
    s3: Any,
    project_id: int,
    run_id: str,
    copy: CopyOptions,
    concurrency: int,
    other_repository_urls: tuple[str, ...] = (),
    take_over: bool = True,
    clock: Clock = utcnow,
    **overrides: Any,
) -> MoveContext:
    """What the relocation asset builds for one project's run, from the live repository, with the
    run's lease taken as a run takes it (`take_over`: earlier runs are over, their leases gone)."""
    ctx = move_context(
        settings,
        engine_for(settings.repository_url),
        s3,
        project_id,
        run_id,
        clock,
        other_repositories=tuple(engine_for(url) for url in other_repository_urls),
        copy=copy,
        concurrency=concurrency,
        archive_storage_class=ARCHIVE_STORAGE_CLASS,
        **overrides,
    )
    if take_over:
        with ctx.repository.begin() as conn:
            conn.execute(delete(relocation_lease).where(relocation_lease.c.project_id == project_id))
    acquire(ctx.repository, project_id, run_id, ctx.target.bucket, ctx.clock(), ctx.lease_seconds)
    return ctx


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after_calls(s3: Any, operations: tuple[str, ...], count: int, archive: bool | None = None) -> None:
    """SIGKILL once `count` calls of `operations` answered; `archive` tells archives (copies onto
    themselves, DeleteObjects) from copies into the target bucket."""
    answered = [0]
    lock = threading.Lock()

    def note_kind(params: dict, context: dict, **_: Any) -> None:
        # A copy onto itself is an archive copy; a delete is always an archive.
        source = params.get("CopySource")
        context["costalloc_archive"] = source is None or (source["Bucket"], source["Key"]) == (
            params["Bucket"],
            params["Key"],
        )

    def after_call(context: dict, **_: Any) -> None:
        if archive is not None and context.get("costalloc_archive") != archive:
            return
        with lock:
            answered[0] += 1
            if answered[0] >= count:
                die()

    for operation in operations:
        s3.meta.events.register(f"provide-client-params.s3.{operation}", note_kind)
        s3.meta.events.register(f"after-call.s3.{operation}", after_call)


def kill_around_repoint(engine: Engine, after: bool) -> None:
    repointed = [False]
    committed = [False]

    def before_statement(_conn, _cursor, statement: str, *_args: Any) -> None:
        # The repoint is the one UPDATE of `files` (on MySQL a SELECT of its result follows it in
        # the same transaction, so "after" waits for the commit rather than the next statement).
        if "UPDATE FILES" in statement.upper():
            if not after:
                die()
            repointed[0] = True
        elif after and committed[0]:
            die()

    def on_commit(_conn) -> None:
        committed[0] = repointed[0]

    event.listen(engine, "before_cursor_execute", before_statement)
    event.listen(engine, "commit", on_commit)


def main(spec: dict[str, Any]) -> int:
    s3 = make_s3_client(spec["s3_endpoint"], "us-east-1", max_pool_connections=16)
    ctx = build_context(
        Settings(
            repository_url=spec["repository_url"],
            replica_url=spec["repository_url"],
            s3_endpoint_url=spec["s3_endpoint"],
            stack=spec["stack"],
            archive_grace_seconds=0,
            # The crashed run's lease lapses quickly, so the test's next run may take the project.
            lease_seconds=CRASHED_LEASE_SECONDS,
        ),
        s3,
        spec["project_id"],
        spec["run_id"],
        CopyOptions(spec["multipart_threshold"], spec["part_size"]),
        spec["concurrency"],
        **spec.get("overrides", {}),
    )
    point, _, count = spec["kill_at"].partition(":")
    if point == "target-copy":
        kill_after_calls(s3, ("CopyObject",), int(count), archive=False)
    elif point == "archive":
        kill_after_calls(s3, ("CopyObject", "DeleteObjects"), int(count), archive=True)
    elif point == "part-copy":
        kill_after_calls(s3, ("UploadPartCopy",), int(count))
    elif point == "complete":
        kill_after_calls(s3, ("CompleteMultipartUpload",), int(count))
    elif point in ("before-repoint", "after-repoint"):
        kill_around_repoint(ctx.repository, after=point == "after-repoint")
    else:
        raise SystemExit(f"unknown kill point {spec['kill_at']!r}")
    move_bundle(ctx, spec["handle_ids"])
    return 3


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
