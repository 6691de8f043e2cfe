"""A real worker process SIGKILLed at each step of the protocol, then the move run again.

Each test ends with the audit finding nothing, every handle reading back its original bytes, and
no copy redone that the ledger or the target bucket already proved.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from costalloc_pipeline.audit import COPIED_NOT_REPOINTED, REPOINTED_NOT_ARCHIVED, audit
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.defs.local_runner import LocalRunner
from costalloc_pipeline.defs.partitions import projects
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.resume import archive_due
from costalloc_pipeline.placement.misplaced import find_out_of_place
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.replica.refresh import (
    refresh_entity_replication,
    refresh_file_replication,
)
from costalloc_pipeline.schema.repository import (
    FileStatus,
    MetadataType,
    MoveState,
    files,
)

from .repository import SMALL_PARTS, CopyCounter, crash, make_repo, md5

PROJECT = 10


@pytest.fixture(params=["archive copies", "versioned default bucket"])
def repo(settings, entities, request):
    """Every crash in both archive modes: the default bucket, where the files move from, either
    unversioned (archives are copies) or versioned (archives are DeleteObjects)."""
    if request.param == "versioned default bucket":
        settings = settings.with_changes(default_bucket_versioning="enable")
    return make_repo(settings, entities)


def keys_in(repo, bucket: str) -> set[str]:
    return {o["Key"] for o in repo.s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def assert_moved_and_archived(repo, originals: dict[int, bytes], target: str) -> None:
    for handle_id in originals:
        handle = repo.handle(handle_id)
        assert handle.bucket_name == target
        assert repo.source_archived(repo.settings.default_bucket, handle.key)
        assert repo.ledger_states(handle_id)[-1] == MoveState.DONE.value
        repo.assert_archive_kept(handle_id, originals[handle_id])
    repo.assert_intact(originals)
    violations = repo.audit()
    assert violations.counts == {} and violations.checked_handles == len(originals)


def test_killed_after_copies_the_rerun_reuses_them(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(4)
    repo.crash(PROJECT, list(originals), "target-copy:2")

    assert len(keys_in(repo, target)) == 2
    # Nothing was repointed: every handle still reads its source, the ledger only says STARTED.
    assert repo.audit().counts == {}
    repo.assert_intact(originals)

    s3 = repo.client()
    copies = CopyCounter(s3)
    result = move_bundle(repo.context(PROJECT, s3, run_id="rerun"), list(originals))
    assert (result.moved_files, result.reused_copies, result.failed) == (4, 2, {})
    assert copies.into_target == 2
    assert_moved_and_archived(repo, originals, target)


def test_killed_between_copy_and_repoint_the_rerun_copies_nothing(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    repo.crash(PROJECT, list(originals), "before-repoint")

    violations = repo.audit()
    assert violations.counts == {COPIED_NOT_REPOINTED: 3}
    assert sorted(violations.found[COPIED_NOT_REPOINTED]) == sorted(originals)
    repo.assert_intact(originals)

    s3 = repo.client()
    copies = CopyCounter(s3)
    result = move_bundle(repo.context(PROJECT, s3, run_id="rerun"), list(originals))
    assert (result.moved_files, result.reused_copies) == (3, 3)
    assert copies.into_target == 0
    assert_moved_and_archived(repo, originals, target)


def test_killed_after_the_repoint_the_resume_archives_without_copying(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    repo.crash(PROJECT, list(originals), "after-repoint")

    violations = repo.audit()
    # The handles already read their copies (I1 holds); only the archive step is owed.
    assert violations.counts == {REPOINTED_NOT_ARCHIVED: 3}
    repo.assert_intact(originals)
    assert all(repo.storage_class(repo.settings.default_bucket, repo.handle(h).key) == "STANDARD" for h in originals)

    s3 = repo.client()
    copies = CopyCounter(s3)
    assert move_bundle(repo.context(PROJECT, s3, run_id="rerun"), list(originals)).moved_files == 0
    result = archive_due(repo.context(PROJECT, s3, run_id="rerun"), PROJECT)
    assert result.archived_objects == 3
    assert (copies.into_target, copies.archives) == (0, 3)
    assert_moved_and_archived(repo, originals, target)


def test_killed_in_the_middle_of_archiving_a_bundle(repo):
    """Archive copies: killed after the second of five. A versioned bucket's five archives are one
    DeleteObjects: killed once it answered, before the ledger knew."""
    versioned = repo.settings.default_bucket_versioning == "enable"
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(5)
    repo.crash(PROJECT, list(originals), "archive:1" if versioned else "archive:2")

    archived = [h for h in originals if repo.source_archived(repo.settings.default_bucket, repo.handle(h).key)]
    assert len(archived) == (5 if versioned else 2)
    assert repo.audit().counts == {REPOINTED_NOT_ARCHIVED: 5}

    s3 = repo.client()
    copies = CopyCounter(s3)
    result = archive_due(repo.context(PROJECT, s3, run_id="rerun"), PROJECT)
    assert result.archived_objects == 5
    assert copies.into_target == 0
    assert_moved_and_archived(repo, originals, target)


def test_killed_between_the_batches_of_a_bundle(repo):
    """Repointed two at a time while the bundle goes on copying: killed at the first archive, with
    the rest of the bundle not yet repointed. Every handle still reads its bytes; the next run moves
    the rest, reusing what was copied, and the resume archives what was repointed."""
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(5)
    repo.crash(PROJECT, list(originals), "archive:1", repoint_batch=2)

    moved = [h for h in originals if repo.handle(h).bucket_name == target]
    # The first batch at least (a second one if its copies were verified before the kill).
    assert 2 <= len(moved) < len(originals)
    assert all(repo.ledger_states(h) == [MoveState.REPOINTED.value] for h in moved)
    left = [h for h in originals if h not in moved]
    assert all(repo.ledger_states(h) in ([MoveState.STARTED.value], [MoveState.COPIED.value]) for h in left)
    repo.assert_intact(originals)
    counts = repo.audit().counts
    assert counts.get(REPOINTED_NOT_ARCHIVED) == len(moved)
    assert set(counts) <= {REPOINTED_NOT_ARCHIVED, COPIED_NOT_REPOINTED}

    s3 = repo.client()
    copies = CopyCounter(s3)
    result = move_bundle(repo.context(PROJECT, s3, run_id="rerun", repoint_batch=2), list(originals))
    # Only those not repointed move; a copy made before the kill is reused, not made again.
    assert (result.moved_files, result.failed) == (len(left), {})
    assert copies.into_target == len(left) - result.reused_copies
    result = archive_due(repo.context(PROJECT, s3, run_id="rerun"), PROJECT)
    assert result.archived_objects == len(moved)
    assert_moved_and_archived(repo, originals, target)


def test_killed_in_the_middle_of_a_multipart_copy(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2, size=3000)
    repo.crash(PROJECT, list(originals), "part-copy:3", copy=SMALL_PARTS)

    # The half-done upload is not an object: nothing to reuse, nothing repointed.
    assert keys_in(repo, target) == set()
    assert repo.audit().counts == {}

    s3 = repo.client()
    result = move_bundle(repo.context(PROJECT, s3, run_id="rerun", copy=SMALL_PARTS), list(originals))
    assert (result.moved_files, result.reused_copies, result.failed) == (2, 0, {})
    assert_moved_and_archived(repo, originals, target)


def misplaced_handles(stack, project_id: int) -> list[int]:
    """What the run's files_out_of_place asset would hand to the mover."""
    replica = engine_for(stack.settings.replica_url)
    refresh_entity_replication(stack.repository, replica, full_refresh=True)
    refresh_file_replication(stack.repository, replica, full_refresh=True)
    found = find_out_of_place(replica, project_id, load_placement(stack.repository))
    return [int(handle_id) for handle_id in found.to_move["file_handle_id"]]


def assert_every_handle_reads_its_bytes(stack) -> None:
    with stack.repository.connect() as conn:
        handles = conn.execute(
            select(files).where(
                files.c.status == FileStatus.AVAILABLE.value, files.c.metadata_type == MetadataType.S3.value
            )
        ).all()
    for handle in handles:
        body = stack.s3.get_object(Bucket=handle.bucket_name, Key=handle.key)["Body"].read()
        assert (len(body), md5(body)) == (handle.content_size, handle.content_md5), handle.id


@pytest.mark.parametrize("kill_at", ["target-copy:5", "after-repoint"])
def test_killed_worker_then_the_dagster_job_finishes_the_move(stack, proxy, kill_at):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    handle_ids = misplaced_handles(stack, project)
    crash(stack.settings, project, handle_ids, kill_at)

    # The job's S3 traffic goes through the proxy (no faults): it counts the copies made.
    through_proxy = stack.settings.with_changes(s3_endpoint_url=proxy.endpoint)
    stack.runner.instance.add_dynamic_partitions(projects.name, [str(project)])
    run = LocalRunner(through_proxy, stack.runner.instance).run(str(project))

    assert run.success
    summary = run.output_for_node("relocation.summarize_relocation")
    copies = proxy.traffic.copies_into_targets
    if kill_at == "after-repoint":
        # Every handle was repointed before the crash: the run only archives the sources.
        assert (summary["moved_files"], copies) == (0, 0)
    else:
        # The five copies made before the crash (and any same-key twin of theirs) are reused.
        assert summary["reused_copies"] >= 5
        assert copies == summary["moved_files"] - summary["reused_copies"]
    assert [check.passed for check in run.get_asset_check_evaluations()] == [True]
    assert_every_handle_reads_its_bytes(stack)
    with stack.repository.connect() as conn:
        violations = audit(conn, stack.s3, retention_days=stack.settings.archive_retention_days)
    assert violations.counts == {}
    assert violations.checked_handles > len(handle_ids)
