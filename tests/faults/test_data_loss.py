"""Regression tests of issue "Nothing lost, for real": each case lost or corrupted a file before.

Every test ends as the others do: every handle reads its own bytes, and the audit finds nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import update

from costalloc_pipeline.db import new_etag, utcnow
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.lease import LeaseHeld
from costalloc_pipeline.mover.plan import candidates_of
from costalloc_pipeline.mover.resume import archive_due
from costalloc_pipeline.placement.misplaced import find_out_of_place
from costalloc_pipeline.placement.progress import project_progress
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.replica.refresh import (
    refresh_entity_replication,
    refresh_file_replication,
)
from costalloc_pipeline.schema.repository import FileStatus, MoveState, files

from .repository import SMALL_PARTS, CopyCounter, md5

PROJECT, OTHER_PROJECT = 10, 20


def archive_copies(s3: Any, on_archive) -> None:
    """Call `on_archive(bucket, key)` before each archive copy (a copy of an object onto itself)."""

    def before(params: dict, **_: Any) -> None:
        source = params.get("CopySource") or {}
        if (source.get("Bucket"), source.get("Key")) == (params["Bucket"], params["Key"]):
            on_archive(params["Bucket"], params["Key"])

    s3.meta.events.register("provide-client-params.s3.CopyObject", before)


def set_row(repo, handle_id: int, **values: Any) -> None:
    with repo.engine.begin() as conn:
        conn.execute(update(files).where(files.c.id == handle_id).values(**values))


# --- 1. an archive races a move ------------------------------------------------------------------


def test_an_unassign_while_a_run_archives_waits_for_that_run(repo):
    """Run 1 is about to archive the old object when the project is unassigned: run 2 cannot start
    until run 1 is over, then moves the file back from a live copy. Every copy of H was archived
    before (both runs archived, nothing was readable)."""
    allocation = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(1)
    ((handle_id, body),) = originals.items()
    s3 = repo.client()
    refused: list[str] = []

    def unassign_and_try_a_second_run(_bucket: str, _key: str) -> None:
        if refused:
            return
        repo.unassign(PROJECT)
        with pytest.raises(LeaseHeld) as held:
            repo.context(PROJECT, run_id="run-2", take_over=False)
        refused.append(held.value.reason)

    archive_copies(s3, unassign_and_try_a_second_run)
    first = move_bundle(repo.context(PROJECT, s3, run_id="run-1"), [handle_id])
    assert refused and first.moved_files == 1
    assert repo.handle(handle_id).bucket_name == allocation
    repo.end_run(PROJECT, "run-1")

    back = move_bundle(repo.context(PROJECT, run_id="run-2", take_over=False), [handle_id])
    assert back.moved_files == 1
    handle = repo.handle(handle_id)
    assert handle.bucket_name == repo.settings.default_bucket
    assert repo.storage_class(handle.bucket_name, handle.key) == "STANDARD"
    assert repo.read(handle_id) == body
    assert repo.audit().counts == {}


def test_a_reference_that_appears_during_the_grace_period_keeps_the_object(repo):
    target = repo.project(PROJECT, "genomics")
    ((handle_id, body),) = repo.add_handles(1).items()
    old = repo.handle(handle_id)
    result = move_bundle(repo.context(PROJECT, run_id="run-1", archive_grace_seconds=3600), [handle_id])
    assert (result.moved_files, result.archived_objects, result.archives_pending) == (1, 0, 1)
    repo.end_run(PROJECT, "run-1")
    # A writer that read the handle before the repoint makes a new handle of the old location.
    late = repo.add_handle(body, key=old.key, upload=False)
    early = archive_due(repo.context(PROJECT, run_id="resume-1", archive_grace_seconds=3600), PROJECT)
    assert early.archived_objects == 0 and early.sources_still_referenced == 0

    later = dt.timedelta(seconds=3601)
    due = archive_due(
        repo.context(PROJECT, run_id="resume-2", archive_grace_seconds=3600, clock=lambda: utcnow() + later), PROJECT
    )
    assert (due.archived_objects, due.sources_still_referenced) == (0, 1)
    assert repo.storage_class(repo.settings.default_bucket, old.key) == "STANDARD"
    assert repo.read(late) == body and repo.read(handle_id) == body
    assert repo.handle(handle_id).bucket_name == target
    assert repo.audit().counts == {}


def test_resume_leaves_the_rows_of_a_run_still_moving(repo):
    repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2)
    move_bundle(repo.context(PROJECT, run_id="run-1", archive_grace_seconds=3600), list(originals))
    # run-1 still holds the project's lease: its repointed rows are its own.
    with pytest.raises(LeaseHeld):
        repo.context(PROJECT, run_id="resume", take_over=False)
    stranger = repo.context(OTHER_PROJECT, run_id="resume-other", archive_grace_seconds=0)
    assert archive_due(stranger, None).archived_objects == 0
    assert all(repo.ledger_states(h) == [MoveState.REPOINTED.value] for h in originals)
    repo.assert_intact(originals)


# --- 2. two different objects meet at one target key -------------------------------------------


def test_two_sources_with_one_key_never_both_move_to_it(repo):
    repo.project(PROJECT, "genomics")
    # Another allocation's bucket, kept in being by a project of its own.
    repo.entities.project(OTHER_PROJECT)
    elsewhere = repo.assign(OTHER_PROJECT, "imaging")
    key = f"7/{new_etag()}/same-key.bin"
    first = repo.add_handle(b"the bytes of the first handle", key=key)
    second = repo.add_handle(b"the second handle's other bytes", bucket=elsewhere, key=key)
    originals = {first: b"the bytes of the first handle", second: b"the second handle's other bytes"}

    result = move_bundle(repo.context(PROJECT, concurrency=2), [first, second])
    assert result.moved_files == 1
    again = move_bundle(repo.context(PROJECT, run_id="run-2"), [first, second])
    assert again.moved_files == 0 and len(again.failed) == 1
    assert next(iter(again.failed.values())).startswith("target conflict")
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_of_two_sources_for_one_key_the_one_whose_bytes_are_there_moves(repo):
    """The target key already holds H2's bytes (a copy an earlier run left). H1, with other bytes,
    comes first by bucket; before, H1 was chosen run after run, met the target conflict, and H2
    waited for ever (seed 2382 of the randomized interleavings). Now H2 moves, H1 is the conflict."""
    target = repo.project(PROJECT, "genomics")
    repo.entities.project(OTHER_PROJECT)
    elsewhere = repo.assign(OTHER_PROJECT, "imaging")
    assert elsewhere < repo.settings.default_bucket
    key = f"7/{new_etag()}/same-key.bin"
    h1_body, h2_body = b"H1's bytes in the imaging bucket", b"H2's bytes, also at the target key"
    h1 = repo.add_handle(h1_body, bucket=elsewhere, key=key)
    h2 = repo.add_handle(h2_body, key=key)
    repo.s3.put_object(Bucket=target, Key=key, Body=h2_body)

    for run in ("run-1", "run-2"):
        move_bundle(repo.context(PROJECT, run_id=run), [h1, h2])
        repo.end_run(PROJECT, run)
    assert repo.handle(h2).bucket_name == target
    assert repo.handle(h1).bucket_name == elsewhere
    assert repo.ledger_states(h1)[-1] == MoveState.FAILED.value
    repo.assert_intact({h1: h1_body, h2: h2_body})
    assert repo.audit().counts == {}


# --- 3. objects that are not ours to overwrite -----------------------------------------------------


@pytest.mark.parametrize("owner", ["nobody", "an UNLINKED handle"])
def test_other_bytes_at_the_target_key_are_never_overwritten(repo, owner):
    target = repo.project(PROJECT, "genomics")
    ((handle_id, body),) = repo.add_handles(1).items()
    key = repo.handle(handle_id).key
    theirs = b"bytes that were there first"
    repo.s3.put_object(Bucket=target, Key=key, Body=theirs)
    if owner != "nobody":
        unlinked = repo.add_handle(theirs, bucket=target, key=key, upload=False)
        set_row(repo, unlinked, status=FileStatus.UNLINKED.value)

    result = move_bundle(repo.context(PROJECT), [handle_id])
    assert result.moved_files == 0 and result.failed[handle_id].startswith("target conflict")
    assert repo.s3.get_object(Bucket=target, Key=key)["Body"].read() == theirs
    assert repo.read(handle_id) == body
    assert repo.audit().counts == {}


def test_a_key_another_stack_references_at_the_target_is_never_overwritten(repo, tmp_path):
    from .test_concurrency import other_stack

    target = repo.project(PROJECT, "genomics")
    ((handle_id, body),) = repo.add_handles(1).items()
    key = repo.handle(handle_id).key
    theirs = b"the other stack's file at the same key"
    repo.s3.put_object(Bucket=target, Key=key, Body=theirs)
    other_url = other_stack(repo, tmp_path, key, theirs)

    result = move_bundle(repo.context(PROJECT, other_repository_urls=(other_url,)), [handle_id])
    assert result.moved_files == 0 and result.failed[handle_id].startswith("target conflict")
    assert repo.s3.get_object(Bucket=target, Key=key)["Body"].read() == theirs
    assert repo.read(handle_id) == body


# --- 4. truncation: a recorded size that lies ------------------------------------------------------


@pytest.mark.parametrize("path", ["single copy", "multipart"])
def test_a_recorded_size_that_lies_fails_the_file_and_truncates_nothing(repo, path):
    repo.project(PROJECT, "genomics")
    body = bytes(range(256)) * 12
    handle_id = repo.add_handle(body)
    set_row(repo, handle_id, content_size=1500, content_md5=None)
    copy = SMALL_PARTS if path == "multipart" else None

    result = move_bundle(repo.context(PROJECT, **({"copy": copy} if copy else {})), [handle_id])
    assert result.moved_files == 0
    assert result.failed[handle_id] == f"copy failed: the object is {len(body)} bytes, the handle records 1500"
    handle = repo.handle(handle_id)
    assert handle.bucket_name == repo.settings.default_bucket
    assert repo.storage_class(handle.bucket_name, handle.key) == "STANDARD"
    assert repo.read(handle_id) == body


# --- 5. a stale copy is never reused --------------------------------------------------------------


def test_a_copy_of_bytes_the_source_no_longer_has_is_replaced(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2)
    repo.crash(PROJECT, list(originals), "before-repoint")
    # The user uploads new bytes for one file, at the same key: new size, new MD5, new etag.
    changed = next(iter(originals))
    row = repo.handle(changed)
    new_body = b"new content written after the copy was made"
    repo.s3.put_object(Bucket=row.bucket_name, Key=row.key, Body=new_body)
    set_row(repo, changed, etag=new_etag(), content_size=len(new_body), content_md5=md5(new_body))
    originals[changed] = new_body

    result = move_bundle(repo.context(PROJECT, run_id="rerun"), list(originals))
    assert (result.moved_files, result.reused_copies) == (2, 1)
    assert repo.handle(changed).bucket_name == target
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_a_multipart_copy_the_ledger_never_heard_of_is_read_and_reused(repo):
    """Killed right after a multipart copy completed: the copy's ETag is not an MD5 and no ledger
    row names it. Read back, it is the handle's bytes: reused, not a target conflict for ever."""
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(1, size=2500)
    repo.crash(PROJECT, list(originals), "complete:1", copy=SMALL_PARTS)
    s3 = repo.client()
    uploads: list[str] = []
    s3.meta.events.register(
        "provide-client-params.s3.CreateMultipartUpload", lambda params, **_: uploads.append(params["Bucket"])
    )
    result = move_bundle(repo.context(PROJECT, s3, run_id="rerun", copy=SMALL_PARTS), list(originals))
    # No copy into the target again; the one multipart upload is the archive of the source.
    assert (result.moved_files, result.reused_copies) == (1, 1)
    assert uploads == [repo.settings.default_bucket]
    assert all(repo.handle(h).bucket_name == target for h in originals)
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


# --- 7. a preview that is another project's file ---------------------------------------------------


def test_a_preview_that_is_another_projects_file_is_a_conflict_everywhere(repo):
    repo.project(PROJECT, "genomics")
    repo.project(OTHER_PROJECT)
    preview = repo.add_handle(b"a thumbnail, also a file of project 20", project_id=OTHER_PROJECT)
    owner = repo.add_handle(b"project 10's image", project_id=PROJECT)
    set_row(repo, owner, preview_id=preview)
    refresh_entity_replication(repo.engine, repo.engine, full_refresh=True)
    refresh_file_replication(repo.engine, repo.engine, full_refresh=True)
    placement = load_placement(repo.engine)

    found = find_out_of_place(repo.engine, PROJECT, placement)
    assert set(found.to_move["file_handle_id"]) == {owner}
    assert set(found.conflicts["file_handle_id"]) == {preview}
    result = move_bundle(repo.context(PROJECT), [owner, preview])
    assert result.moved_files == 1
    assert repo.handle(preview).bucket_name == repo.settings.default_bucket
    with repo.engine.connect() as conn:
        progress = project_progress(conn, PROJECT, load_placement(conn))
    assert (progress.misplaced_files, progress.conflict_files) == (0, 1)
    assert repo.audit().counts == {}


# --- 8. one odd row does not block a project -------------------------------------------------------


def test_odd_rows_are_reported_and_the_rest_moves(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    no_size, no_key, fine = originals
    set_row(repo, no_size, content_size=None)
    set_row(repo, no_key, key=None)
    frame = pd.DataFrame(
        {
            "file_handle_id": list(originals),
            "bucket_name": [repo.settings.default_bucket] * 3,
            "key": [repo.handle(h).key for h in originals],
            "content_size": pd.array([None, 10, 10], dtype="Int64"),
        }
    )
    assert [c.size for c in candidates_of(frame)] == [0, 10, 10]

    result = move_bundle(repo.context(PROJECT), list(originals))
    assert result.moved_files == 1 and repo.handle(fine).bucket_name == target
    assert set(result.failed) == {no_size, no_key}
    assert repo.ledger_states(no_key) == [MoveState.FAILED.value]
    del originals[no_key]
    repo.assert_intact(originals)


# --- a run that stalls past its lease (found by the randomized interleavings, seed 1971) -----------


def test_a_copy_in_flight_when_its_run_stalls_never_lands_on_another_runs_move(repo):
    """Run 1 has claimed G/K for H2 and its CopyObject is on its way when the run stalls past its
    lease. Run 2, of another project, wants G/K for H1 (other bytes). Before, it took the stale
    claim, copied and repointed H1; then run 1's copy landed on top (moto ignores If-None-Match on
    CopyObject) and H1 read H2's bytes. Now a claim outlives its run's lease by one lease period:
    run 2 leaves G/K alone, and a later run finds run 1's unreferenced copy and replaces it."""
    target = repo.project(PROJECT, "genomics")
    repo.entities.project(OTHER_PROJECT)
    imaging = repo.assign(OTHER_PROJECT, "imaging")
    key = f"7/{new_etag()}/same-key.bin"
    h1_body, h2_body = b"project 10's file at the key", b"project 20's other bytes at that key"
    h1 = repo.add_handle(h1_body, key=key, project_id=PROJECT)
    h2 = repo.add_handle(h2_body, bucket=imaging, key=key, project_id=OTHER_PROJECT)
    assert repo.assign(OTHER_PROJECT, "genomics") == target
    originals = {h1: h1_body, h2: h2_body}

    stalled_s3 = repo.client()
    stalled = repo.context(OTHER_PROJECT, stalled_s3, run_id="run-1")
    later = dt.timedelta(seconds=stalled.lease_seconds + 1)
    meanwhile: list[Any] = []

    def run_2_while_run_1_stalls(params: dict, **_: Any) -> None:
        if not meanwhile and params["Bucket"] == target:
            ctx = repo.context(PROJECT, run_id="run-2", take_over=False, clock=lambda: utcnow() + later)
            meanwhile.append(move_bundle(ctx, [h1]))

    stalled_s3.meta.events.register("provide-client-params.s3.CopyObject", run_2_while_run_1_stalls)
    first = move_bundle(stalled, [h2])
    repo.assert_intact(originals)
    assert meanwhile[0].moved_files == 0 and meanwhile[0].skipped["target key claimed by another run"] == 1
    # Run 2 declared run 1 dead (its clock is past run 1's lease): run 1 stops before its repoint.
    assert first.stopped and first.moved_files == 0
    repo.end_run(OTHER_PROJECT, "run-1")
    repo.end_run(PROJECT, "run-2")

    third = move_bundle(repo.context(PROJECT, run_id="run-3"), [h1])
    assert third.moved_files == 1 and repo.handle(h1).bucket_name == target
    fourth = move_bundle(repo.context(OTHER_PROJECT, run_id="run-4"), [h2])
    assert fourth.moved_files == 0 and fourth.failed[h2].startswith("target conflict")
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_a_run_that_lost_its_lease_before_its_copies_writes_nothing(repo):
    """Run 1 stalls after looking at the objects and before its first copy; meanwhile run 2 takes
    the project's expired lease. Run 1's copies are fenced one by one: it stops without writing
    (before, it copied every file and stopped only at the repoint)."""
    repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    shift = [dt.timedelta(0)]
    first_s3 = repo.client()
    first = repo.context(PROJECT, first_s3, run_id="run-1", concurrency=1, clock=lambda: utcnow() + shift[0])

    def stall(**_: Any) -> None:
        if not shift[0]:
            shift[0] = dt.timedelta(seconds=first.lease_seconds + 1)
            repo.context(PROJECT, run_id="run-2", take_over=False, clock=lambda: utcnow() + shift[0])

    first_s3.meta.events.register("after-call.s3.ListObjectsV2", stall)
    copies = CopyCounter(first_s3)
    result = move_bundle(first, list(originals))
    assert result.stopped and result.moved_files == 0
    assert copies.into_target == 0
    assert all(repo.ledger_states(h) == [MoveState.SKIPPED.value] for h in originals)
    repo.assert_intact(originals)
