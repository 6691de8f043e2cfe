"""A bundle that keeps copying while it repoints and archives in batches (mover/pipeline.py), on
real S3 (moto's server) and real databases: the order of its steps, a handle changed between its
copy and its batch's repoint, and a run that loses its lease half-way through."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from sqlalchemy import event, select, update

from costalloc_pipeline.db import utcnow
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.lease import acquire
from costalloc_pipeline.mover.resume import archive_due
from costalloc_pipeline.schema.repository import MoveState, files, move_ledger, object_claim

from .conftest import TARGET_BUCKET


def ledger_rows(world, handle_id: int) -> list[Any]:
    with world.repository.connect() as conn:
        return list(conn.execute(select(move_ledger).where(move_ledger.c.file_handle_id == handle_id)))


def watch_copies(world, on_copy=None) -> list[tuple[str, str]]:
    """Every CopyObject of the world's client as it is answered: ("copy" or "archive", key)."""
    answered: list[tuple[str, str]] = []

    def note(params: dict, context: dict, **_: Any) -> None:
        archive = params["CopySource"]["Bucket"] == params["Bucket"]
        context["costalloc_copy"] = ("archive" if archive else "copy", params["Key"])

    def after(context: dict, **_: Any) -> None:
        answered.append(context["costalloc_copy"])
        if on_copy is not None:
            on_copy(*context["costalloc_copy"])

    world.s3.meta.events.register("provide-client-params.s3.CopyObject", note)
    world.s3.meta.events.register("after-call.s3.CopyObject", after)
    return answered


def test_batches_are_repointed_and_archived_while_the_bundle_copies(world):
    ids = [world.add_handle(os.urandom(100 + i)) for i in range(6)]
    steps: list[str] = []
    answered = watch_copies(world, lambda kind, _key: steps.append(kind))

    def note_repoint(_conn, _cursor, statement: str, *_: Any) -> None:
        if "UPDATE FILES" in statement.upper():
            steps.append("repoint")

    event.listen(world.repository, "before_cursor_execute", note_repoint)
    try:
        result = move_bundle(world.context(concurrency=1, repoint_batch=2), ids)
    finally:
        event.remove(world.repository, "before_cursor_execute", note_repoint)

    assert (result.moved_files, result.archived_objects, result.failed) == (6, 6, {})
    assert len(answered) == 12
    last_copy = max(i for i, step in enumerate(steps) if step == "copy")
    # The first batch was repointed and its sources archived before the bundle's last copy.
    assert steps.index("repoint") < last_copy and steps.index("archive") < last_copy
    assert steps.count("repoint") == 3
    for hid in ids:
        assert [row.state for row in ledger_rows(world, hid)] == [MoveState.DONE.value]
        assert world.handle(hid).bucket_name == TARGET_BUCKET
        assert world.storage_class(world.settings.default_bucket, world.handle(hid).key) == "GLACIER"


def test_a_handle_changed_after_its_copy_is_left_alone_by_its_batch(world):
    ids = [world.add_handle(os.urandom(80)) for _ in range(3)]
    key_of = {world.handle(hid).key: hid for hid in ids}
    copied: list[int] = []

    def another_writer(kind: str, key: str) -> None:
        # Once the second copy is made, a user changes the handle copied first: its batch (all
        # three) is not repointed yet.
        if kind == "copy":
            copied.append(key_of[key])
            if len(copied) == 2:
                with world.repository.begin() as conn:
                    conn.execute(update(files).where(files.c.id == copied[0]).values(etag="changed-meanwhile"))

    watch_copies(world, another_writer)
    result = move_bundle(world.context(concurrency=1, repoint_batch=3), ids)

    changed = copied[0]
    assert (result.moved_files, result.changed_meanwhile, result.archived_objects) == (2, 1, 2)
    handle = world.handle(changed)
    assert (handle.bucket_name, handle.etag) == (world.settings.default_bucket, "changed-meanwhile")
    assert world.storage_class(handle.bucket_name, handle.key) == "STANDARD"
    [row] = ledger_rows(world, changed)
    # SKIPPED, and the copy is known: the next run reuses it instead of copying again.
    assert row.state == MoveState.SKIPPED.value and row.target_object_etag is not None
    result = move_bundle(world.context(run_id="run-2"), [changed])
    assert (result.moved_files, result.reused_copies) == (1, 1)


class SteppedClock:
    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset


def test_a_run_that_loses_its_lease_mid_bundle_stops_and_leaves_nothing_half_done(world):
    bodies = {world.add_handle(os.urandom(90 + i)): None for i in range(6)}
    ids = list(bodies)
    originals = {hid: world.read(world.settings.default_bucket, world.handle(hid).key) for hid in ids}
    clock = SteppedClock()
    ctx = world.context(concurrency=1, repoint_batch=2, clock=clock)

    def stall(kind: str, _key: str) -> None:
        # After the first archive the run stalls past its lease, and another run takes the project.
        if kind == "archive" and clock.offset == dt.timedelta():
            clock.offset = dt.timedelta(seconds=ctx.lease_seconds + 1)
            acquire(world.repository, 1, "run-2", ctx.target.bucket, clock(), ctx.lease_seconds)

    watch_copies(world, stall)
    result = move_bundle(ctx, ids)

    assert result.stopped
    moved = [hid for hid in ids if world.handle(hid).bucket_name == TARGET_BUCKET]
    assert 2 <= len(moved) < len(ids) and result.moved_files == len(moved)
    for hid in ids:
        handle = world.handle(hid)
        # I1: every handle reads its own bytes, wherever it points.
        assert world.read(handle.bucket_name, handle.key) == originals[hid]
        [row] = ledger_rows(world, hid)
        # Nothing is left STARTED or COPIED by the stopped run: each row says what became of it.
        expected = (MoveState.DONE.value, MoveState.REPOINTED.value) if hid in moved else (MoveState.SKIPPED.value,)
        assert row.state in expected, (hid, row.state)
    with world.repository.connect() as conn:
        assert conn.execute(select(object_claim).where(object_claim.c.run_id == "run-1")).first() is None

    # The run that took over moves the rest and archives every source still owed.
    later = world.context(run_id="run-2", clock=clock)
    result = move_bundle(later, ids)
    assert result.moved_files == len(ids) - len(moved)
    archive_due(later, 1)
    for hid in ids:
        handle = world.handle(hid)
        assert handle.bucket_name == TARGET_BUCKET and world.read(TARGET_BUCKET, handle.key) == originals[hid]
        assert world.storage_class(world.settings.default_bucket, handle.key) == "GLACIER"
