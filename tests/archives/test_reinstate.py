"""`costalloc restore --reinstate`: a restored archive made the handle's live object again, under
the mover's invariants, over HTTP to moto and on SQLite and PostgreSQL; and what it refuses."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select, update

from costalloc_pipeline.archives.reinstate import Refused, reinstate
from costalloc_pipeline.db import new_etag, utcnow
from costalloc_pipeline.mover import lease
from costalloc_pipeline.schema.repository import MoveState, files, move_ledger, relocation_lease

from .conftest import PROJECT, Moved
from .test_locate import run


def ledger_rows(moved: Moved, handle_id: int) -> list[Any]:
    with moved.repo.engine.connect() as conn:
        return list(
            conn.execute(
                select(move_ledger).where(move_ledger.c.file_handle_id == handle_id).order_by(move_ledger.c.id)
            )
        )


def lose_live_object(moved: Moved, handle_id: int) -> str:
    """The disaster a restore is for: the handle's live object is gone."""
    row = moved.repo.handle(handle_id)
    moved.repo.s3.delete_object(Bucket=row.bucket_name, Key=row.key)
    return row.key


def restored(moved: Moved, handle_id: int, capsys) -> None:
    assert run(capsys, "restore", str(handle_id))[0] == 0


def assert_live_and_audited(moved: Moved, handle_id: int, bucket: str, capsys) -> None:
    row = moved.repo.handle(handle_id)
    assert row.bucket_name == bucket
    assert moved.repo.read(handle_id) == moved.originals[handle_id]
    assert moved.repo.storage_class(bucket, row.key) == "STANDARD"
    assert moved.repo.s3.get_object_tagging(Bucket=bucket, Key=row.key)["TagSet"] == []
    assert moved.repo.audit().counts == {}
    code, out, _ = run(capsys, "verify")
    assert (code, out.splitlines()[-1]) == (0, "no violations")


def test_locate_restore_reinstate_end_to_end(moved: Moved, capsys):
    handle_id = moved.first
    key = lose_live_object(moved, handle_id)
    etag_before = moved.repo.handle(handle_id).etag
    code, out, _ = run(capsys, "locate", str(handle_id))
    assert code == 0 and "(no object there)" in out.splitlines()[0]

    code, out, err = run(capsys, "restore", str(handle_id), "--reinstate")
    default = moved.repo.settings.default_bucket
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == (
        f"file handle {handle_id}: reinstated from s3://{default}/{key} to s3://{moved.target}/{key}"
    )
    assert moved.repo.handle(handle_id).etag != etag_before
    assert_live_and_audited(moved, handle_id, moved.target, capsys)
    last = ledger_rows(moved, handle_id)[-1]
    assert (last.state, last.source_bucket, last.target_bucket) == (MoveState.DONE.value, default, moved.target)
    assert last.archive_key is None
    # The archive itself is kept for its retention, as it was.
    assert moved.repo.storage_class(default, key) == "GLACIER"
    code, out, _ = run(capsys, "locate", str(handle_id))
    assert f"lives at s3://{moved.target}/{key} (STANDARD object)" in out


def test_a_handle_on_a_live_verified_copy_is_left_unchanged(moved: Moved, capsys):
    before = moved.repo.handle(moved.first)
    rows = len(ledger_rows(moved, moved.first))
    code, out, _ = run(capsys, "restore", str(moved.first), "--reinstate")
    assert code == 0
    assert out.splitlines()[-1] == (
        f"file handle {moved.first}: already live and verified at s3://{moved.target}/{before.key}"
    )
    assert moved.repo.handle(moved.first) == before
    assert len(ledger_rows(moved, moved.first)) == rows


def test_the_archive_in_the_wanted_bucket_is_made_live_in_place(moved: Moved, capsys):
    # The project left its allocation: its files belong in the default bucket, where the archives are.
    moved.repo.unassign(PROJECT)
    lose_live_object(moved, moved.first)
    code, out, _ = run(capsys, "restore", str(moved.first), "--reinstate")
    assert code == 0, out
    assert_live_and_audited(moved, moved.first, moved.repo.settings.default_bucket, capsys)


def test_another_object_at_the_target_key_is_never_overwritten(moved: Moved, capsys):
    key = moved.repo.handle(moved.first).key
    moved.repo.s3.put_object(Bucket=moved.target, Key=key, Body=b"someone else's bytes")
    before = moved.repo.handle(moved.first)
    restored(moved, moved.first, capsys)
    code, out, _ = run(capsys, "restore", str(moved.first), "--reinstate")
    assert code == 1
    assert f"not reinstated: s3://{moved.target}/{key} holds another object (20 bytes, STANDARD)" in out
    assert moved.repo.s3.get_object(Bucket=moved.target, Key=key)["Body"].read() == b"someone else's bytes"
    assert moved.repo.handle(moved.first) == before
    assert ledger_rows(moved, moved.first)[-1].state == MoveState.SKIPPED.value


def test_a_key_another_handle_names_is_not_written(moved: Moved, capsys):
    key = lose_live_object(moved, moved.first)
    moved.repo.add_handle(b"other", bucket=moved.target, key=key, upload=False)
    restored(moved, moved.first, capsys)
    code, out, _ = run(capsys, "restore", str(moved.first), "--reinstate")
    assert code == 1
    assert f"another file handle names s3://{moved.target}/{key}; it is not written over" in out
    assert "Contents" not in moved.repo.s3.list_objects_v2(Bucket=moved.target, Prefix=key)


def test_a_relocation_run_holding_the_lease_is_not_raced(moved: Moved, capsys):
    key = lose_live_object(moved, moved.first)
    lease.acquire(moved.repo.engine, PROJECT, "relocation-run", moved.target, utcnow(), 600)
    restored(moved, moved.first, capsys)
    code, out, _ = run(capsys, "restore", str(moved.first), "--reinstate")
    assert code == 1
    assert f"not reinstated: syn{PROJECT} is being moved by run relocation-run" in out
    assert "Contents" not in moved.repo.s3.list_objects_v2(Bucket=moved.target, Prefix=key)
    with moved.repo.engine.connect() as conn:
        holder = conn.execute(select(relocation_lease.c.run_id)).scalars().all()
    assert holder == ["relocation-run"]


def test_a_restore_not_done_yet_is_not_reinstated(moved: Moved, capsys, slow_restores):
    lose_live_object(moved, moved.first)
    time.sleep(1.1)
    code, out, _ = run(capsys, "restore", str(moved.first), "--reinstate")
    assert code == 1
    assert "is not readable yet (restore in progress)" in out


def _on_copy(s3: Any, action) -> None:
    """Run `action` once, right before the reinstate's CopyObject leaves: a real interleaving."""
    done: list[bool] = []

    def before(**_: Any) -> None:
        if not done:
            done.append(True)
            action()

    s3.meta.events.register("before-call.s3.CopyObject", before)


def test_a_handle_changed_during_the_reinstate_is_not_repointed(moved: Moved, capsys):
    key = lose_live_object(moved, moved.first)
    restored(moved, moved.first, capsys)
    concurrent = new_etag()

    def change_the_handle() -> None:
        with moved.repo.engine.begin() as conn:
            conn.execute(update(files).where(files.c.id == moved.first).values(etag=concurrent))

    s3 = moved.repo.client()
    _on_copy(s3, change_the_handle)
    with pytest.raises(Refused, match="the handle changed during the reinstate"):
        reinstate(moved.repo.settings, moved.repo.engine, s3, moved.first)
    assert moved.repo.handle(moved.first).etag == concurrent
    last = ledger_rows(moved, moved.first)[-1]
    # The copy is recorded as costalloc's own, so a later move may replace it.
    assert last.state == MoveState.SKIPPED.value and last.target_object_etag is not None
    assert moved.repo.s3.head_object(Bucket=moved.target, Key=key)["ContentLength"] == len(moved.originals[moved.first])


def test_an_archive_that_expires_mid_way_fails_cleanly(moved: Moved, capsys):
    key = lose_live_object(moved, moved.first)
    restored(moved, moved.first, capsys)
    before = moved.repo.handle(moved.first)
    s3 = moved.repo.client()
    default = moved.repo.settings.default_bucket
    _on_copy(s3, lambda: moved.repo.s3.delete_object(Bucket=default, Key=key))
    with pytest.raises(Refused, match=f"the copy to s3://{moved.target}/{key} failed"):
        reinstate(moved.repo.settings, moved.repo.engine, s3, moved.first)
    assert moved.repo.handle(moved.first) == before
    assert ledger_rows(moved, moved.first)[-1].state == MoveState.FAILED.value
    assert "Contents" not in moved.repo.s3.list_objects_v2(Bucket=moved.target, Prefix=key)


@pytest.mark.parametrize("in_place", [False, True], ids=["to-the-allocation", "in-place"])
def test_a_large_archive_is_reinstated_part_by_part(moved: Moved, capsys, monkeypatch, in_place):
    # Objects above the threshold take UploadPartCopy, verified by reading the copy back.
    monkeypatch.setenv("COSTALLOC_MULTIPART_THRESHOLD", "100")
    monkeypatch.setenv("COSTALLOC_MULTIPART_PART_SIZE", "256")
    if in_place:
        moved.repo.unassign(PROJECT)
    lose_live_object(moved, moved.first)
    code, out, _ = run(capsys, "restore", str(moved.first), "--reinstate")
    assert code == 0, out
    bucket = moved.repo.settings.default_bucket if in_place else moved.target
    assert_live_and_audited(moved, moved.first, bucket, capsys)
