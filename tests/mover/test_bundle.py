"""The move protocol against real S3 (moto's server over HTTP) and real databases."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select, update

from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.copier import CopyOptions
from costalloc_pipeline.mover.handles import read_handles
from costalloc_pipeline.schema.repository import MoveState, files, move_ledger

from .conftest import EXTERNAL_BUCKET, TARGET_BUCKET


def read_handles_by_id(world, handle_id: int):
    with world.repository.connect() as conn:
        [handle] = read_handles(conn, [handle_id])
    return handle


def ledger_states(world, handle_id: int) -> list[str]:
    with world.repository.connect() as conn:
        return list(
            conn.execute(
                select(move_ledger.c.state).where(move_ledger.c.file_handle_id == handle_id).order_by(move_ledger.c.id)
            ).scalars()
        )


def test_moves_verifies_repoints_and_archives(world):
    bodies = {world.add_handle(os.urandom(100 + i)): None for i in range(5)}
    before = {hid: world.handle(hid) for hid in bodies}

    result = move_bundle(world.context(), list(bodies))

    assert (result.moved_files, result.archived_objects, result.failed) == (5, 5, {})
    for hid, old in before.items():
        new = world.handle(hid)
        assert (new.bucket_name, new.key, new.storage_location_id) == (
            TARGET_BUCKET,
            old.key,
            world.target.storage_location_id,
        )
        assert new.etag != old.etag and new.updated_on >= old.updated_on
        assert world.read(TARGET_BUCKET, new.key) == world.read(TARGET_BUCKET, old.key)
        assert world.storage_class(old.bucket_name, old.key) == "GLACIER"
        # moto refuses GetObjectTagging on archive classes; HEAD still counts the tags we replaced.
        headers = world.s3.head_object(Bucket=old.bucket_name, Key=old.key)["ResponseMetadata"]["HTTPHeaders"]
        assert headers.get("x-amz-tagging-count") == "1"
        assert ledger_states(world, hid) == [MoveState.DONE.value]


def test_the_copy_has_the_handles_bytes(world):
    body = os.urandom(4096)
    hid = world.add_handle(body)
    move_bundle(world.context(), [hid])
    assert world.read(TARGET_BUCKET, world.handle(hid).key) == body


def test_external_and_unavailable_handles_are_not_touched(world):
    external = world.add_handle(b"external bytes", bucket=EXTERNAL_BUCKET)
    unlinked = world.add_handle(b"unlinked bytes", status="UNLINKED")
    result = move_bundle(world.context(), [external, unlinked])
    assert result.moved_files == 0
    assert world.handle(external).bucket_name == EXTERNAL_BUCKET
    assert world.storage_class(EXTERNAL_BUCKET, world.handle(external).key) == "STANDARD"
    assert world.handle(unlinked).bucket_name == world.settings.default_bucket
    assert world.s3.list_objects_v2(Bucket=TARGET_BUCKET).get("KeyCount", 0) == 0


def test_a_shared_key_is_archived_only_after_every_handle_moved(world):
    key = "1/shared/data.csv"
    first = world.add_handle(b"shared bytes", key=key)
    second = world.add_handle(b"shared bytes", key=key, upload=False)

    result = move_bundle(world.context(), [first])
    assert (result.moved_files, result.archived_objects, result.sources_still_referenced) == (1, 0, 1)
    assert world.storage_class(world.settings.default_bucket, key) == "STANDARD"
    assert world.read(world.settings.default_bucket, key) == b"shared bytes"

    result = move_bundle(world.context(run_id="run-2"), [second])
    assert (result.moved_files, result.reused_copies, result.archived_objects) == (1, 1, 1)
    assert world.storage_class(world.settings.default_bucket, key) == "GLACIER"


def test_a_handle_changed_during_the_move_is_left_alone_then_moved_next_run(world):
    hid = world.add_handle(b"contended")

    def concurrent_writer(**_):
        with world.repository.begin() as conn:
            conn.execute(update(files).where(files.c.id == hid).values(etag="changed-by-someone-else"))

    world.s3.meta.events.register("after-call.s3.CopyObject", concurrent_writer)
    try:
        result = move_bundle(world.context(), [hid])
    finally:
        world.s3.meta.events.unregister("after-call.s3.CopyObject", concurrent_writer)

    handle = world.handle(hid)
    assert (result.moved_files, result.changed_meanwhile) == (0, 1)
    assert (handle.bucket_name, handle.etag) == (world.settings.default_bucket, "changed-by-someone-else")
    assert world.storage_class(handle.bucket_name, handle.key) == "STANDARD"

    result = move_bundle(world.context(run_id="run-2"), [hid])
    assert (result.moved_files, result.reused_copies) == (1, 1)
    assert world.handle(hid).bucket_name == TARGET_BUCKET


def test_a_second_run_does_nothing(world):
    hid = world.add_handle(b"once")
    move_bundle(world.context(), [hid])
    result = move_bundle(world.context(run_id="run-2"), [hid])
    assert result.moved_files == 0
    assert result.skipped["already in the target bucket"] == 1
    assert ledger_states(world, hid) == [MoveState.DONE.value]


def test_a_corrupt_source_fails_the_file_and_the_handle_stays(world):
    hid = world.add_handle(b"original bytes")
    world.s3.put_object(Bucket=world.settings.default_bucket, Key=world.handle(hid).key, Body=b"rotten bytes!!")
    result = move_bundle(world.context(), [hid])
    assert result.moved_files == 0 and hid in result.failed
    assert world.handle(hid).bucket_name == world.settings.default_bucket
    assert ledger_states(world, hid) == [MoveState.FAILED.value]


def test_another_handles_object_at_the_target_key_is_never_overwritten(world):
    key = "1/collision/file.bin"
    owner = world.add_handle(b"owner's bytes", bucket=TARGET_BUCKET, key=key)
    mover = world.add_handle(b"different bytes", key=key)
    result = move_bundle(world.context(), [mover])
    assert mover in result.failed
    assert world.read(TARGET_BUCKET, key) == b"owner's bytes"
    assert world.handle(owner).bucket_name == TARGET_BUCKET
    assert world.handle(mover).bucket_name == world.settings.default_bucket


def test_objects_above_the_threshold_take_the_multipart_path(world):
    body = os.urandom(5000)
    hid = world.add_handle(body)
    requests: list[str] = []
    world.s3.meta.events.register("before-call.s3.*", lambda model, **_: requests.append(model.name))
    ctx = world.context(copy=CopyOptions(multipart_threshold=1024, part_size=1024))
    result = move_bundle(ctx, [hid])
    assert result.moved_files == 1
    assert requests.count("UploadPartCopy") == 2 * 5  # five parts to the target, five for the archive
    assert world.read(TARGET_BUCKET, world.handle(hid).key) == body
    assert world.storage_class(world.settings.default_bucket, world.handle(hid).key) == "GLACIER"


HEADERS = {
    "ContentType": "text/csv",
    "ContentDisposition": 'attachment; filename="cohort.csv"',
    "ContentEncoding": "gzip",
    "ContentLanguage": "en",
    "CacheControl": "no-cache",
    "Metadata": {"uploaded-by": "synapse"},
}


@pytest.mark.parametrize("threshold", [5 * 1024**3, 1024], ids=["CopyObject", "UploadPartCopy"])
def test_the_copy_and_the_archive_keep_the_objects_headers(world, threshold):
    """A download of the moved file (or of its restored archive) is served as the original was."""
    body = os.urandom(3000)
    hid = world.add_handle(body, upload=False)
    key = world.handle(hid).key
    world.s3.put_object(Bucket=world.settings.default_bucket, Key=key, Body=body, **HEADERS)
    result = move_bundle(world.context(copy=CopyOptions(multipart_threshold=threshold, part_size=1024)), [hid])
    assert (result.moved_files, result.archived_objects) == (1, 1)
    for bucket in (TARGET_BUCKET, world.settings.default_bucket):
        found = world.s3.head_object(Bucket=bucket, Key=key)
        assert {name: found.get(name) for name in HEADERS} == HEADERS, bucket
        assert found["ContentLength"] == len(body)
    assert world.storage_class(world.settings.default_bucket, key) == "GLACIER"


def test_two_requests_per_moved_file(world):
    """A copy and an archive per file; what is at the sources and targets is listed per bundle, and
    the source bucket's versioning is read once before the archives (unversioned: archive copies)."""
    ids = [world.add_handle(os.urandom(64)) for _ in range(100)]
    requests: list[str] = []
    world.s3.meta.events.register("before-call.s3.*", lambda model, **_: requests.append(model.name))
    move_bundle(world.context(), ids)
    assert sorted(set(requests)) == ["CopyObject", "GetBucketVersioning", "ListObjectsV2"]
    assert requests.count("CopyObject") == 2 * len(ids)
    assert len(requests) <= 2.05 * len(ids)


def test_a_round_trip_leaves_no_archive_tag_on_live_objects(world):
    """Moving back overwrites the archived object at the old key: the live copy must not keep its
    expiry tag nor its archive class (I1), whatever the S3 implementation does with old tags."""
    ids = [world.add_handle(os.urandom(50)) for _ in range(3)]
    move_bundle(world.context(), ids)
    world.unassign()
    home = world.context(run_id="back")
    result = move_bundle(home, ids)
    assert result.moved_files == 3
    for hid in ids:
        handle = world.handle(hid)
        assert handle.bucket_name == world.settings.default_bucket
        assert world.storage_class(handle.bucket_name, handle.key) == "STANDARD"
        assert world.s3.get_object_tagging(Bucket=handle.bucket_name, Key=handle.key)["TagSet"] == []
        assert world.storage_class(TARGET_BUCKET, handle.key) == "GLACIER"


def test_an_archived_object_is_never_reused_as_a_copy(world):
    hid = world.add_handle(b"archived twin")
    key = world.handle(hid).key
    world.s3.copy_object(
        Bucket=TARGET_BUCKET,
        Key=key,
        CopySource={"Bucket": world.settings.default_bucket, "Key": key},
        StorageClass="GLACIER",
    )
    result = move_bundle(world.context(), [hid])
    # Not reused: a fresh live copy replaced the archive of the same bytes.
    assert (result.moved_files, result.reused_copies) == (1, 0)
    assert world.storage_class(TARGET_BUCKET, key) == "STANDARD"
    assert world.read(TARGET_BUCKET, key) == b"archived twin"
