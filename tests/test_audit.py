"""The audit: a clean repository has no violation; each kind of breakage is reported, exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from faults.proxy import Fault, FaultProxy, the_first
from faults.repository import make_repo, md5
from sqlalchemy import update

from costalloc_pipeline import audit as audit_module
from costalloc_pipeline.audit import (
    AuditedHandle,
    audit,
    lifecycle_problems,
    object_problem,
)
from costalloc_pipeline.buckets import ARCHIVE_RULE_ID, lifecycle_configuration
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import utcnow
from costalloc_pipeline.mover import ledger
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.handles import read_handles
from costalloc_pipeline.placement.rule import Target
from costalloc_pipeline.schema.repository import MoveState, files, move_ledger

PROJECT = 10
HANDLE = AuditedHandle(1, "bucket", "key", 3, md5(b"abc"))


# --- pure decisions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "problem"),
    [
        (None, audit_module.MISSING),
        ({"ContentLength": 3, "ETag": f'"{md5(b"abc")}"'}, None),
        ({"ContentLength": 3, "ETag": f'"{md5(b"abc")}"', "StorageClass": "GLACIER"}, audit_module.ARCHIVED),
        ({"ContentLength": 3, "ETag": f'"{md5(b"abc")}"', "StorageClass": "DEEP_ARCHIVE"}, audit_module.ARCHIVED),
        ({"ContentLength": 4, "ETag": f'"{md5(b"abcd")}"'}, audit_module.WRONG_SIZE),
        ({"ContentLength": 3, "ETag": f'"{md5(b"xyz")}"'}, audit_module.WRONG_MD5),
        # A multipart ETag is not an MD5: HEAD alone cannot tell.
        ({"ContentLength": 3, "ETag": '"0123456789abcdef0123456789abcdef-2"'}, None),
    ],
)
def test_object_problem(found: dict[str, Any] | None, problem: str | None) -> None:
    assert object_problem(HANDLE, found) == problem


def test_a_handle_without_md5_or_size_is_judged_on_what_it_has() -> None:
    bare = AuditedHandle(1, "bucket", "key", None, None)
    assert object_problem(bare, {"ContentLength": 99, "ETag": '"whatever"'}) is None


def test_lifecycle_rules() -> None:
    def archive_rule(days: int, **extra: Any) -> dict[str, Any]:
        rule = {"ID": "a", "Status": "Enabled", "Filter": {"Tag": {"Key": "costalloc:archived", "Value": "true"}}}
        return {**rule, "Expiration": {"Days": days}, **extra}

    installed = lifecycle_configuration_rules(365)
    assert lifecycle_problems(installed, 365) == []
    assert lifecycle_problems([archive_rule(30)], 365) == ["a"]
    assert lifecycle_problems([archive_rule(30, Status="Disabled")], 365) == []
    everything = {"ID": "b", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 400}}
    assert lifecycle_problems([archive_rule(400), everything], 365) == ["b"]
    tagged_and = {
        "ID": "c",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "", "Tags": [{"Key": "costalloc:archived", "Value": "true"}]}},
        "Expiration": {"Days": 365},
    }
    assert lifecycle_problems([tagged_and], 365) == []


def lifecycle_configuration_rules(days: int) -> list[dict[str, Any]]:
    return lifecycle_configuration(Settings(archive_retention_days=days))["Rules"]


# --- against real servers -------------------------------------------------------------------------


@pytest.fixture
def repo(settings, entities):
    return make_repo(settings, entities)


@pytest.fixture
def moved(repo):
    """A project whose files moved (so the ledger has archives), and handles still to move."""
    repo.project(PROJECT, "genomics")
    done = repo.add_handles(3)
    move_bundle(repo.context(PROJECT), list(done))
    waiting = repo.add_handles(3)
    return {**done, **waiting}


def run_audit(repo, s3: Any = None, **options: Any):
    with repo.engine.connect() as conn:
        return audit(conn, s3 or repo.client(), concurrency=4, batch=2, **options)


def test_a_clean_repository_has_no_violation(repo, moved):
    violations = run_audit(repo, retention_days=365)
    assert violations.counts == {} and violations.total == 0
    assert (violations.checked_handles, violations.managed_handles, violations.checked_archives) == (6, 6, 3)
    assert violations.checked_ledger_rows == 3


def break_missing(repo, handle_id: int) -> None:
    handle = repo.handle(handle_id)
    repo.s3.delete_object(Bucket=handle.bucket_name, Key=handle.key)


def break_size(repo, handle_id: int) -> None:
    handle = repo.handle(handle_id)
    repo.s3.put_object(Bucket=handle.bucket_name, Key=handle.key, Body=b"short")


def break_bytes(repo, handle_id: int) -> None:
    handle = repo.handle(handle_id)
    body = repo.read(handle_id)
    repo.s3.put_object(Bucket=handle.bucket_name, Key=handle.key, Body=bytes([body[0] ^ 1]) + body[1:])


def break_archive(repo, handle_id: int) -> None:
    handle = repo.handle(handle_id)
    source = {"Bucket": handle.bucket_name, "Key": handle.key}
    repo.s3.copy_object(Bucket=handle.bucket_name, Key=handle.key, CopySource=source, StorageClass="GLACIER")


def break_tag(repo, handle_id: int) -> None:
    handle = repo.handle(handle_id)
    tagging = {"TagSet": [{"Key": "costalloc:archived", "Value": "true"}]}
    repo.s3.put_object_tagging(Bucket=handle.bucket_name, Key=handle.key, Tagging=tagging)


@pytest.mark.parametrize(
    ("damage", "kind"),
    [
        (break_missing, audit_module.MISSING),
        (break_size, audit_module.WRONG_SIZE),
        (break_bytes, audit_module.WRONG_MD5),
        (break_archive, audit_module.ARCHIVED),
        (break_tag, audit_module.EXPIRING),
    ],
)
@pytest.mark.parametrize("which", ["moved", "waiting"])
def test_one_broken_handle_is_reported_alone(repo, moved, damage, kind, which):
    handle_id = list(moved)[0 if which == "moved" else -1]
    damage(repo, handle_id)
    violations = run_audit(repo, retention_days=365)
    assert violations.counts == {kind: 1}
    assert violations.found == {kind: [handle_id]}


def test_half_done_moves_are_reported(repo, moved):
    waiting = list(moved)[3:]
    target = Target(repo.project(20, "imaging"), 2)
    with repo.engine.begin() as conn:
        rows = ledger.start(conn, "crashed", 20, read_handles(conn, waiting), target)
        ledger.record(conn, MoveState.COPIED, {rows[waiting[0]]: {}})
        ledger.record(conn, MoveState.REPOINTED, {rows[waiting[1]]: {}})
    violations = run_audit(repo)
    assert violations.found == {
        audit_module.COPIED_NOT_REPOINTED: [waiting[0]],
        audit_module.REPOINTED_NOT_ARCHIVED: [waiting[1]],
    }


def test_half_done_moves_of_runs_in_progress_are_work_not_violations(repo, moved):
    waiting = list(moved)[3:]
    target = Target(repo.project(20, "imaging"), 2)
    with repo.engine.begin() as conn:
        moving = ledger.start(conn, "moving", 20, read_handles(conn, waiting[:1]), target)
        crashed = ledger.start(conn, "crashed", 20, read_handles(conn, waiting[1:2]), target)
        ledger.record(conn, MoveState.COPIED, {moving[waiting[0]]: {}, crashed[waiting[1]]: {}})
    violations = run_audit(repo, in_progress_runs=frozenset({"moving"}))
    assert violations.found == {audit_module.COPIED_NOT_REPOINTED: [waiting[1]]}


def test_a_ledger_row_outside_managed_storage_is_reported(repo, moved):
    handle_id = list(moved)[-1]
    with repo.engine.begin() as conn:
        ledger.start(conn, "run", PROJECT, read_handles(conn, [handle_id]), Target("someone-elses-bucket", 99))
    assert run_audit(repo).found == {audit_module.OUTSIDE: [handle_id]}


def test_a_lost_archive_is_reported_within_its_retention_only(repo, moved):
    lost = next(iter(moved))
    repo.s3.delete_object(Bucket=repo.settings.default_bucket, Key=repo.handle(lost).key)
    assert run_audit(repo, retention_days=365).found == {audit_module.ARCHIVE_LOST: [lost]}
    # Long ago: the lifecycle rule has legitimately deleted it.
    with repo.engine.begin() as conn:
        conn.execute(update(move_ledger).values(archived_on=utcnow().replace(year=2000)))
    assert run_audit(repo, retention_days=365).counts == {}


def test_an_unsafe_lifecycle_rule_is_reported(repo, moved):
    bucket = repo.settings.default_bucket
    rules = lifecycle_configuration_rules(30)
    repo.s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    violations = run_audit(repo, retention_days=365)
    assert violations.found == {audit_module.UNSAFE_LIFECYCLE: [bucket]}
    assert ARCHIVE_RULE_ID in {rule["ID"] for rule in rules}


def test_a_sample_checks_that_many_handles_and_every_archived_key(repo, moved):
    extra = repo.add_handles(10)
    # A handle that shares the key of an archived source: whatever the sample, it is checked.
    archived_key = repo.handle(next(iter(moved))).key
    sharer = repo.add_handle(moved[next(iter(moved))], key=archived_key, upload=False)
    violations = run_audit(repo, sample=4)
    assert violations.sampled and violations.managed_handles == 6 + len(extra) + 1
    assert 4 <= violations.checked_handles <= 5
    assert violations.found == {audit_module.ARCHIVED: [sharer]}


def test_a_multipart_objects_md5_is_read_back_on_request(repo):
    repo.project(PROJECT, "genomics")
    # Handles costalloc never moved: the ledger knows no verified copy of theirs.
    originals = repo.add_handles(2, size=2000)
    handle_id = next(iter(originals))
    # Same size, other bytes, and a multipart ETag that proves nothing.
    handle = repo.handle(handle_id)
    body = repo.read(handle_id)
    upload = repo.s3.create_multipart_upload(Bucket=handle.bucket_name, Key=handle.key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), 1024), start=1):
        chunk = body[start : start + 1024].swapcase()
        etag = repo.s3.upload_part(
            Bucket=handle.bucket_name, Key=handle.key, UploadId=upload, PartNumber=number, Body=chunk
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    repo.s3.complete_multipart_upload(
        Bucket=handle.bucket_name, Key=handle.key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert run_audit(repo).counts == {}
    assert run_audit(repo, read_back=True).found == {audit_module.WRONG_MD5: [handle_id]}


def test_a_handle_repointed_during_the_audit_is_not_reported(repo, moved):
    """The batch says the handle is at its old place; by the time its HEAD answers, a move has
    repointed it and archived the source. Confirmation re-reads the handle."""
    handle_id = list(moved)[-1]
    old = repo.handle(handle_id)
    move_target = repo.project(20, "imaging")
    s3 = repo.client()

    def move_meanwhile(params: dict, **_: Any) -> None:
        if params["Key"] == old.key and repo.handle(handle_id).bucket_name == old.bucket_name:
            repo.s3.copy_object(Bucket=move_target, Key=old.key, CopySource={"Bucket": old.bucket_name, "Key": old.key})
            with repo.engine.begin() as conn:
                conn.execute(update(files).where(files.c.id == handle_id).values(bucket_name=move_target))
            source = {"Bucket": old.bucket_name, "Key": old.key}
            repo.s3.copy_object(Bucket=old.bucket_name, Key=old.key, CopySource=source, StorageClass="GLACIER")

    s3.meta.events.register("provide-client-params.s3.HeadObject", move_meanwhile)
    assert run_audit(repo, s3).counts == {}


def test_s3_refusing_the_checks_is_reported_not_raised(repo, moved, s3_endpoint):
    with FaultProxy(s3_endpoint) as proxy:
        proxy.inject(the_first(2, Fault.ERROR_500, "HeadObject"))
        # Standard retries ride out the two failures.
        assert run_audit(repo, repo.client(proxy.endpoint)).counts == {}
        proxy.inject(the_first(100, Fault.SLOW_DOWN_503, "HeadObject"))
        violations = run_audit(repo, repo.client(proxy.endpoint, max_attempts=1))
    # Six handles and three archives could not be checked: that is not a clean bill of health.
    assert violations.counts == {audit_module.UNCHECKED: 6 + 3}


def test_a_moved_copy_overwritten_afterwards_is_reported_even_without_an_md5(repo):
    """A handle with no recorded MD5 has only its size for the audit; the ledger still knows the
    ETag of the copy it verified at the move, so same-size other bytes there are found."""
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2)
    overwritten, _intact = originals
    with repo.engine.begin() as conn:
        conn.execute(update(files).where(files.c.id.in_(list(originals))).values(content_md5=None))
    move_bundle(repo.context(PROJECT), list(originals))
    assert run_audit(repo).counts == {}

    key = repo.handle(overwritten).key
    body = originals[overwritten]
    repo.s3.put_object(Bucket=target, Key=key, Body=bytes([body[0] ^ 1]) + body[1:])
    assert run_audit(repo).found == {audit_module.OVERWRITTEN: [overwritten]}
