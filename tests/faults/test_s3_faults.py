"""S3 misbehaving under the mover: errors, slow-downs, dropped connections, corrupted copies.

The mover's client talks to moto's server through a fault-injecting proxy; the tests' own client
talks to moto directly. Each test ends with the audit finding nothing and every handle reading
back its original bytes.
"""

from __future__ import annotations

import re

import pytest

from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.schema.repository import MoveState

from .proxy import Fault, ProxiedRequest, UpstreamAnswer, a_share, the_first
from .repository import SMALL_PARTS, CopyCounter, md5

PROJECT = 10
_ETAG = re.compile(rb"<ETag>.*?</ETag>")


def assert_all_moved(repo, originals: dict[int, bytes], target: str) -> None:
    for handle_id in originals:
        assert repo.handle(handle_id).bucket_name == target
        assert repo.ledger_states(handle_id)[-1] == MoveState.DONE.value
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_500s_and_slow_downs_on_a_share_of_requests(repo, proxy):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(10)
    # Some errors come after S3 did the work: the retried archive copy then meets an archived object.
    proxy.inject(a_share(0.3, [Fault.ERROR_500, Fault.SLOW_DOWN_503, Fault.ERROR_500_AFTER], seed=4))

    result = move_bundle(repo.context(PROJECT, repo.client(proxy.endpoint)), list(originals))

    assert (result.moved_files, result.archived_objects, result.failed) == (10, 10, {})
    assert set(proxy.traffic.faults) == {Fault.ERROR_500, Fault.SLOW_DOWN_503, Fault.ERROR_500_AFTER}
    assert_all_moved(repo, originals, target)


def test_lost_answers_to_archive_copies(repo, proxy):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    # S3 archives each object but the mover hears a 500: its retry finds the object already archived.
    lost = the_first(3, Fault.ERROR_500_AFTER, "CopyObject")
    proxy.inject(lambda request: lost(request) if request.is_archive_copy else Fault.NONE)

    result = move_bundle(repo.context(PROJECT, repo.client(proxy.endpoint)), list(originals))

    assert (result.moved_files, result.archived_objects, result.failed) == (3, 3, {})
    assert proxy.traffic.faults == {Fault.ERROR_500_AFTER: 3}
    assert_all_moved(repo, originals, target)


def test_connections_dropped_during_copies(repo, proxy):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(4)
    # Two copies never reach S3; the next two are carried out and their answers lost.
    dropped = [the_first(2, Fault.DROP, "CopyObject"), the_first(2, Fault.DROP_AFTER, "CopyObject")]
    proxy.inject(lambda request: next((f for f in (p(request) for p in dropped) if f is not Fault.NONE), Fault.NONE))

    result = move_bundle(repo.context(PROJECT, repo.client(proxy.endpoint)), list(originals))

    assert (result.moved_files, result.failed) == (4, {})
    assert proxy.traffic.faults == {Fault.DROP: 2, Fault.DROP_AFTER: 2}
    assert_all_moved(repo, originals, target)


def _truncated(body: bytes) -> bytes:
    return body[:-1]


def _flipped(body: bytes) -> bytes:
    return bytes([body[0] ^ 0xFF]) + body[1:]


def corrupting(repo, damage, operation: str):
    """After S3 wrote a copy into the target bucket, damage it, and answer with the damaged
    object's ETag, as S3 would have had it written those bytes."""

    def rewrite(request: ProxiedRequest, answer: UpstreamAnswer) -> UpstreamAnswer:
        if request.operation != operation or request.is_archive_copy or answer.status != 200:
            return answer
        good = repo.s3.get_object(Bucket=request.bucket, Key=request.key)["Body"].read()
        bad = damage(good)
        repo.s3.put_object(Bucket=request.bucket, Key=request.key, Body=bad)
        return answer.with_body(_ETAG.sub(f"<ETag>&quot;{md5(bad)}&quot;</ETag>".encode(), answer.body))

    return rewrite


@pytest.mark.parametrize("damage", [_truncated, _flipped], ids=["wrong size", "wrong bytes"])
def test_a_corrupted_copy_never_moves_the_handle(repo, proxy, damage):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    proxy.inject(lambda _: Fault.NONE, rewrite=corrupting(repo, damage, "CopyObject"))

    result = move_bundle(repo.context(PROJECT, repo.client(proxy.endpoint)), list(originals))

    assert result.moved_files == 0 and set(result.failed) == set(originals)
    for handle_id in originals:
        handle = repo.handle(handle_id)
        assert handle.bucket_name == repo.settings.default_bucket
        assert repo.storage_class(handle.bucket_name, handle.key) == "STANDARD"
        assert repo.ledger_states(handle_id) == [MoveState.FAILED.value]
    repo.assert_intact(originals)
    assert repo.audit().counts == {}

    # S3 behaves again: the damaged copies are not taken for good ones, the files are copied again.
    proxy.heal()
    s3 = repo.client(proxy.endpoint)
    copies = CopyCounter(s3)
    result = move_bundle(repo.context(PROJECT, s3, run_id="run-2"), list(originals))
    assert (result.moved_files, result.reused_copies, copies.into_target) == (3, 0, 3)
    assert_all_moved(repo, originals, target)


def test_a_corrupted_multipart_copy_never_moves_the_handle(repo, proxy):
    repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2, size=2000)
    proxy.inject(lambda _: Fault.NONE, rewrite=corrupting(repo, _flipped, "CompleteMultipartUpload"))

    result = move_bundle(repo.context(PROJECT, repo.client(proxy.endpoint), copy=SMALL_PARTS), list(originals))

    assert result.moved_files == 0 and set(result.failed) == set(originals)
    assert all(repo.handle(h).bucket_name == repo.settings.default_bucket for h in originals)
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_a_copy_damaged_after_a_crash_is_not_reused(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(2)
    repo.crash(PROJECT, list(originals), "before-repoint")
    # The ledger remembers each verified copy's ETag; someone overwrites one copy before the rerun.
    damaged, intact = originals
    key = repo.handle(damaged).key
    repo.s3.put_object(Bucket=target, Key=key, Body=_flipped(originals[damaged]))

    s3 = repo.client()
    copies = CopyCounter(s3)
    result = move_bundle(repo.context(PROJECT, s3, run_id="rerun"), list(originals))
    # The intact copy is reused; the other bytes at the damaged key are not costalloc's to
    # overwrite: that file is a target conflict, left in place, for a person to look at.
    assert (result.moved_files, result.reused_copies, copies.into_target) == (1, 1, 0)
    assert set(result.failed) == {damaged} and result.failed[damaged].startswith("target conflict")
    assert repo.handle(damaged).bucket_name == repo.settings.default_bucket
    assert repo.handle(intact).bucket_name == target
    assert repo.s3.get_object(Bucket=target, Key=key)["Body"].read() == _flipped(originals[damaged])
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


def test_multipart_copies_survive_errors_and_dropped_connections(repo, proxy):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3, size=2500)
    multipart = {"CreateMultipartUpload", "UploadPartCopy", "CompleteMultipartUpload", "HeadObject", "GetObject"}
    proxy.inject(a_share(0.25, [Fault.ERROR_500, Fault.SLOW_DOWN_503, Fault.DROP], seed=7, operations=multipart))

    result = move_bundle(repo.context(PROJECT, repo.client(proxy.endpoint), copy=SMALL_PARTS), list(originals))

    assert (result.moved_files, result.failed) == (3, {})
    assert proxy.traffic.operations["UploadPartCopy"] >= 2 * 3 * 5
    assert sum(proxy.traffic.faults.values()) > 0
    assert_all_moved(repo, originals, target)
