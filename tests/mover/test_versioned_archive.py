"""Archives by DeleteObject in a versioned bucket (mover/archive_method.py), against moto's server:
the moved version becomes noncurrent and is found again by key and version id; nothing else at the
key is ever deleted. moto runs no lifecycle rule, so noncurrent versions stay STANDARD here."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

from costalloc_pipeline.archives.locate import archive_records, find_archive
from costalloc_pipeline.audit import audit
from costalloc_pipeline.db import utcnow
from costalloc_pipeline.mover.archive_method import SOURCE_REPLACED, STATE_SECONDS, ArchiveMethod, BucketStates
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.copier import CopyOptions
from costalloc_pipeline.mover.resume import archive_due
from costalloc_pipeline.schema.repository import MoveState

from .conftest import TARGET_BUCKET

GRACE = 3600


def _later(seconds: int = GRACE + 1):
    return lambda: utcnow() + dt.timedelta(seconds=seconds)


def _live(world, bucket: str, key: str) -> bytes | None:
    try:
        return world.read(bucket, key)
    except world.s3.exceptions.NoSuchKey:
        return None


def _archived_bytes(world, handle_id: int) -> list[bytes]:
    """What each archive the ledger records for the handle reads as, found as locate finds it."""
    with world.repository.connect() as conn:
        records = archive_records(conn, handle_id)
    found = []
    for record in records:
        _, version_id = find_archive(world.s3, record)
        assert version_id is not None, record
        body = world.s3.get_object(Bucket=record.bucket, Key=record.key, VersionId=version_id)["Body"].read()
        found.append(body)
    return found


def _versioned_handle(world, size: int) -> tuple[str, int, str, bytes]:
    """A handle of `size` random bytes in the default bucket, versioned first: (bucket, id, key, bytes)."""
    default = world.settings.default_bucket
    world.version(default)
    body = os.urandom(size)
    hid = world.add_handle(body)
    return default, hid, world.handle(hid).key, body


def _clean_audit(world) -> None:
    with world.repository.connect() as conn:
        violations = audit(conn, world.s3, retention_days=world.settings.archive_retention_days)
    assert violations.total == 0, violations


def test_a_versioned_source_bucket_archives_its_objects_with_one_delete_objects(world):
    default = world.settings.default_bucket
    world.version(default)
    bodies = {world.add_handle(os.urandom(200 + i)): None for i in range(20)}
    bodies = {hid: world.read(default, world.handle(hid).key) for hid in bodies}
    requests: list[str] = []
    world.s3.meta.events.register("before-call.s3.*", lambda model, **_: requests.append(model.name))

    result = move_bundle(world.context(), list(bodies))

    assert (result.moved_files, result.archived_objects, result.failed) == (20, 20, {})
    # One copy a file, and the archives one DeleteObjects (after a look at the keys): no byte is
    # copied a second time, and a file costs about one request.
    assert requests.count("CopyObject") == 20
    assert requests.count("DeleteObjects") == 1
    assert sorted(set(requests)) == [
        "CopyObject",
        "DeleteObjects",
        "GetBucketLifecycleConfiguration",
        "GetBucketVersioning",
        "ListObjectsV2",
    ]
    assert len(requests) <= 20 + 6
    for hid, body in bodies.items():
        [row] = world.ledger_rows(hid)
        key = world.handle(hid).key
        assert (row.state, row.archive_method, row.archive_bucket, row.archive_key) == (
            MoveState.DONE.value,
            "delete",
            default,
            key,
        )
        assert row.archive_version_id is not None and row.archive_version_id == row.source_version_id
        assert _live(world, default, key) is None
        assert world.read(TARGET_BUCKET, key) == body
        assert _archived_bytes(world, hid) == [body]
    _clean_audit(world)


def test_bytes_written_at_the_source_key_after_the_move_are_never_deleted(world):
    """A late writer put new bytes at the old key during the grace period, and no handle names them:
    they are not costalloc's to archive. The moved version became noncurrent when overwritten."""
    default, hid, key, moved = _versioned_handle(world, 300)
    assert move_bundle(world.context(archive_grace_seconds=GRACE), [hid]).archives_pending == 1
    world.s3.put_object(Bucket=default, Key=key, Body=b"written by someone later")

    result = archive_due(world.context(run_id="resume", archive_grace_seconds=GRACE, clock=_later()), 1)

    assert result.archived_objects == 1
    assert _live(world, default, key) == b"written by someone later"
    [row] = world.ledger_rows(hid)
    assert (row.state, row.error) == (MoveState.DONE.value, SOURCE_REPLACED)
    assert _archived_bytes(world, hid) == [moved]


def test_a_delete_that_a_crash_kept_from_the_ledger_is_not_repeated(world):
    default, hid, key, body = _versioned_handle(world, 100)
    move_bundle(world.context(archive_grace_seconds=GRACE), [hid])
    # The archive's delete went through, then the run died before its DONE row.
    world.s3.delete_object(Bucket=default, Key=key)
    requests: list[str] = []
    world.s3.meta.events.register("before-call.s3.DeleteObjects", lambda model, **_: requests.append(model.name))

    result = archive_due(world.context(run_id="resume", archive_grace_seconds=GRACE, clock=_later()), 1)

    assert (result.archived_objects, world.ledger_rows(hid)[0].state) == (1, MoveState.DONE.value)
    # The resume looked at the key and found no live object: no delete sent, no second delete marker.
    assert requests == []
    versions = world.s3.list_object_versions(Bucket=default, Prefix=key)
    assert len(versions.get("DeleteMarkers", [])) == 1
    assert _archived_bytes(world, hid) == [body]
    _clean_audit(world)


def test_a_bucket_whose_versioning_was_suspended_gets_archive_copies(world):
    default = world.settings.default_bucket
    world.version(default)
    hid = world.add_handle(os.urandom(100))
    world.s3.put_bucket_versioning(Bucket=default, VersioningConfiguration={"Status": "Suspended"})

    result = move_bundle(world.context(), [hid])

    assert result.archived_objects == 1
    key = world.handle(hid).key
    assert world.storage_class(default, key) == "GLACIER"
    assert world.ledger_rows(hid)[0].archive_method == "copy"


def test_copy_mode_copies_in_a_versioned_bucket(world):
    default = world.settings.default_bucket
    world.version(default)
    hid = world.add_handle(os.urandom(100))
    result = move_bundle(world.context(archive_mode="copy"), [hid])
    assert result.archived_objects == 1
    assert world.storage_class(default, world.handle(hid).key) == "GLACIER"


def test_an_object_another_handle_names_is_not_deleted(world):
    default = world.settings.default_bucket
    world.version(default)
    key = "1/shared/kept.csv"
    first = world.add_handle(b"shared bytes", key=key)
    world.add_handle(b"shared bytes", key=key, upload=False, project_id=None)

    result = move_bundle(world.context(), [first])

    assert (result.moved_files, result.archived_objects, result.sources_still_referenced) == (1, 0, 1)
    assert _live(world, default, key) == b"shared bytes"
    assert "DeleteMarkers" not in world.s3.list_object_versions(Bucket=default, Prefix=key)


def test_a_reused_copy_s_version_is_looked_up_and_recorded_before_the_delete(world):
    """No copy request named the source's version (the target already held its bytes): a HEAD
    names it, and the ledger records it before the DeleteObject, so the archive is found by it."""
    default, hid, key, body = _versioned_handle(world, 120)
    current = world.s3.put_object(Bucket=default, Key=key, Body=body)["VersionId"]  # same bytes again
    world.s3.put_object(Bucket=TARGET_BUCKET, Key=key, Body=body)

    result = move_bundle(world.context(), [hid])

    assert (result.moved_files, result.reused_copies, result.archived_objects) == (1, 1, 1)
    [row] = world.ledger_rows(hid)
    assert (row.archive_method, row.source_version_id, row.archive_version_id) == ("delete", current, current)
    assert _archived_bytes(world, hid) == [body]
    _clean_audit(world)


def test_an_object_written_while_versioning_was_off_is_archived_by_copy(world):
    """Its version is "null": should versioning be suspended before the DeleteObject, S3 would
    remove it for good. A copy keeps it whatever the bucket's state."""
    default = world.settings.default_bucket
    hid = world.add_handle(os.urandom(90))
    world.version(default)
    result = move_bundle(world.context(), [hid])
    assert result.archived_objects == 1
    [row] = world.ledger_rows(hid)
    assert row.archive_method == "copy"
    assert world.storage_class(default, world.handle(hid).key) == "GLACIER"


def test_a_multipart_copy_records_the_version_it_copied(world):
    default, hid, key, body = _versioned_handle(world, 5000)
    version = world.s3.head_object(Bucket=default, Key=key)["VersionId"]

    result = move_bundle(world.context(copy=CopyOptions(multipart_threshold=1024, part_size=1024)), [hid])

    assert (result.moved_files, result.archived_objects) == (1, 1)
    [row] = world.ledger_rows(hid)
    assert (row.archive_method, row.source_version_id, row.archive_version_id) == ("delete", version, version)
    assert hashlib.md5(world.read(TARGET_BUCKET, key)).hexdigest() == hashlib.md5(body).hexdigest()
    assert _archived_bytes(world, hid) == [body]


def test_a_run_reads_a_bucket_s_state_again_once_it_is_a_minute_old(world):
    """Two requests a bucket and minute, not two a batch of archives; a suspension is seen within it."""
    default = world.settings.default_bucket
    world.version(default)
    states, now = BucketStates(), utcnow()
    requests: list[str] = []
    world.s3.meta.events.register("before-call.s3.*", lambda model, **_: requests.append(model.name))

    def method(seconds: float) -> ArchiveMethod:
        return states.method(world.s3, default, "auto", 365, lambda: now + dt.timedelta(seconds=seconds))

    assert method(0) is ArchiveMethod.DELETE
    world.s3.put_bucket_versioning(Bucket=default, VersioningConfiguration={"Status": "Suspended"})
    assert method(STATE_SECONDS - 1) is ArchiveMethod.DELETE
    assert method(STATE_SECONDS) is ArchiveMethod.COPY
    assert requests.count("GetBucketVersioning") == 2
