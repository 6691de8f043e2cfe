"""Others at work at the same time: another writer, a second run, another project, another stack."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import update

from costalloc_pipeline.db import engine_for, new_etag, utcnow
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.lease import LeaseHeld
from costalloc_pipeline.schema.migrate import upgrade_all
from costalloc_pipeline.schema.repository import MoveState, files

from .repository import CopyCounter, md5

PROJECT, OTHER_PROJECT = 10, 20


def test_handles_changed_by_another_writer_while_their_bundle_runs(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(4)
    renamed, rewritten = list(originals)[:2]
    new_body = b"a new version written by a user"
    new_key = f"7/{new_etag()}/new-version.bin"

    def another_writer(**_: Any) -> None:
        # Once every copy is made, a user renames one file and uploads new bytes for another.
        if copies.into_target == len(originals):
            repo.s3.put_object(Bucket=repo.settings.default_bucket, Key=new_key, Body=new_body)
            with repo.engine.begin() as conn:
                conn.execute(update(files).where(files.c.id == renamed).values(etag=new_etag(), name="renamed.bin"))
                conn.execute(
                    update(files)
                    .where(files.c.id == rewritten)
                    .values(etag=new_etag(), key=new_key, content_size=len(new_body), content_md5=md5(new_body))
                )

    s3 = repo.client()
    copies = CopyCounter(s3)
    s3.meta.events.register("after-call.s3.CopyObject", another_writer)
    before = {h: repo.handle(h) for h in (renamed, rewritten)}
    result = move_bundle(repo.context(PROJECT, s3, concurrency=1), list(originals))

    assert (result.moved_files, result.changed_meanwhile) == (2, 2)
    for handle_id in (renamed, rewritten):
        handle = repo.handle(handle_id)
        # The writer's change stands; the handle was left where the writer put it.
        assert handle.etag != before[handle_id].etag and handle.bucket_name == repo.settings.default_bucket
        assert repo.ledger_states(handle_id) == [MoveState.SKIPPED.value]
        assert repo.storage_class(handle.bucket_name, before[handle_id].key) == "STANDARD"
    assert repo.handle(renamed).name == "renamed.bin"
    assert repo.read(rewritten) == new_body
    assert repo.audit().counts == {}

    result = move_bundle(repo.context(PROJECT, run_id="run-2"), [renamed, rewritten])
    assert result.moved_files == 2
    assert repo.read(rewritten) == new_body and repo.read(renamed) == originals[renamed]
    assert all(repo.handle(h).bucket_name == target for h in originals)
    assert repo.audit().counts == {}


def test_two_runs_of_the_same_project_at_once(repo):
    """One writer per project: a second run cannot start while the first holds the lease; when the
    first stalls past its lease, the second takes over, and the first stops before its repoint."""
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(6)
    first_s3 = repo.client()
    first = repo.context(PROJECT, first_s3, run_id="run-1", concurrency=1)
    with pytest.raises(LeaseHeld):
        repo.context(PROJECT, run_id="run-2", take_over=False)

    # Past run 1's lease and its claims' hold (one lease period more).
    later = dt.timedelta(seconds=2 * first.lease_seconds + 1)
    second: list[Any] = []

    def stall_then_let_the_second_run(**_: Any) -> None:
        # Run 1 has copied every file and stalls; its lease and claims lapse and run 2 does the whole move.
        if copies.into_target == len(originals) and not second:
            ctx = repo.context(PROJECT, run_id="run-2", take_over=False, clock=lambda: utcnow() + later)
            second.append(move_bundle(ctx, list(originals)))

    copies = CopyCounter(first_s3)
    first_s3.meta.events.register("after-call.s3.CopyObject", stall_then_let_the_second_run)
    result = move_bundle(first, list(originals))

    assert result.stopped and result.moved_files == 0
    assert (second[0].moved_files, second[0].reused_copies, second[0].archived_objects) == (6, 6, 6)
    for handle_id in originals:
        states = repo.ledger_states(handle_id)
        assert states.count(MoveState.DONE.value) == 1 and MoveState.REPOINTED.value not in states, states
        assert repo.handle(handle_id).bucket_name == target
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_a_key_shared_by_handles_of_two_projects_in_two_allocations(repo):
    genomics = repo.project(PROJECT, "genomics")
    imaging = repo.project(OTHER_PROJECT, "imaging")
    body = b"one object, two handles, two projects"
    key = f"7/{new_etag()}/shared.csv"
    first = repo.add_handle(body, key=key)
    second = repo.add_handle(body, key=key, upload=False, project_id=OTHER_PROJECT)

    result = move_bundle(repo.context(PROJECT), [first])
    assert (result.moved_files, result.archived_objects, result.sources_still_referenced) == (1, 0, 1)
    # The other project's handle still reads the source: it must not be archived yet.
    assert repo.storage_class(repo.settings.default_bucket, key) == "STANDARD"
    assert repo.read(first) == body and repo.read(second) == body
    assert repo.audit().counts == {}

    result = move_bundle(repo.context(OTHER_PROJECT, run_id="run-2"), [second])
    assert (result.moved_files, result.archived_objects) == (1, 1)
    assert (repo.handle(first).bucket_name, repo.handle(second).bucket_name) == (genomics, imaging)
    assert repo.storage_class(repo.settings.default_bucket, key) == "GLACIER"
    assert repo.read(first) == body and repo.read(second) == body
    assert repo.audit().counts == {}


def other_stack(repo, tmp_path, key: str, body: bytes) -> str:
    """Another stack's repository database (its own SQLite file) with a handle on the same object."""
    url = f"sqlite:///{tmp_path / 'other-stack.db'}"
    upgrade_all(url, url)
    other = replace(repo, engine=engine_for(url))
    other.add_handle(body, key=key, upload=False)
    return url


def test_a_key_referenced_by_another_stack_is_not_archived(repo, tmp_path):
    target = repo.project(PROJECT, "genomics")
    body = b"an object two stacks point at"
    key = f"7/{new_etag()}/cross-stack.bin"
    handle_id = repo.add_handle(body, key=key)
    other_url = other_stack(repo, tmp_path, key, body)

    result = move_bundle(repo.context(PROJECT, other_repository_urls=(other_url,)), [handle_id])

    assert (result.moved_files, result.archived_objects, result.sources_still_referenced) == (1, 0, 1)
    assert repo.handle(handle_id).bucket_name == target
    assert repo.storage_class(repo.settings.default_bucket, key) == "STANDARD"
    assert repo.s3.get_object(Bucket=repo.settings.default_bucket, Key=key)["Body"].read() == body
    assert repo.audit().counts == {}
