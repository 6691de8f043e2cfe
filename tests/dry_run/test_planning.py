"""The pure planning of a dry run: requests, costs, time and the hypothetical placement."""

from __future__ import annotations

import pytest

from costalloc_pipeline.billing.prices import PriceTable
from costalloc_pipeline.dry_run.costs import Archive, costs_of
from costalloc_pipeline.dry_run.inputs import placement_with
from costalloc_pipeline.dry_run.timing import BundleWork, TimeModel, bundle_seconds, total_seconds
from costalloc_pipeline.dry_run.traffic import (
    CopySizes,
    Move,
    Requests,
    bundle_requests,
    listing_requests,
    longest_transfer,
)
from costalloc_pipeline.mover.archive_method import ArchiveMethod
from costalloc_pipeline.mover.context import REPOINT_BATCH
from costalloc_pipeline.placement.rule import Placement

SIZES = CopySizes(multipart_threshold=100, part_size=40)
GLACIER_YEAR = Archive("GLACIER", retention_days=365, grace_seconds=0)


def move(
    handle_id: int, size: int, key: str | None = None, md5_known: bool = True, archived: bool = True, bucket: str = "d"
) -> Move:
    return Move(handle_id, bucket, key or f"k/{handle_id}", size, "STANDARD", md5_known, archived)


def test_a_small_object_is_one_copy_and_its_archive_one_more():
    requests = bundle_requests([move(1, 100)], SIZES)
    assert (requests.copy_object, requests.head_object, requests.archive_copy_object) == (1, 0, 1)
    assert requests.copy_writes == 1 and requests.archive_writes == 1
    assert (requests.copied_bytes, requests.archived_bytes) == (100, 100)


def test_a_versioned_bucket_s_archives_are_a_look_and_one_delete_objects_a_batch():
    moves = [
        Move(i, "default", f"k/{i}", 100, "STANDARD", True, True, ArchiveMethod.DELETE.value)
        for i in range(REPOINT_BATCH + 1)
    ]
    requests = bundle_requests(moves, SIZES)
    # Two batches: a look and a DeleteObjects each; no archive copy, no byte copied again.
    assert (requests.archive_delete_objects, requests.archive_list_objects) == (2, 2)
    assert (requests.archive_copy_object, requests.archived_bytes) == (0, 0)
    # Each noncurrent version's move to the archive class is a lifecycle transition, billed as a write.
    assert requests.archive_writes == REPOINT_BATCH + 1
    # The bucket's versioning and rules are read, unless COSTALLOC_ARCHIVE_MODE=copy says.
    assert requests.bucket_state_reads == 2
    assert bundle_requests(moves, SIZES, reads_bucket_state=False).bucket_state_reads == 0


def test_a_copy_with_no_md5_to_compare_is_verified_by_a_head():
    assert bundle_requests([move(1, 10, md5_known=False)], SIZES).head_object == 1


def test_a_large_object_is_copied_and_archived_in_parts_and_read_back():
    requests = bundle_requests([move(1, 250)], SIZES)
    assert requests.copy_object == 0
    assert (requests.create_multipart_upload, requests.upload_part_copy, requests.complete_multipart_upload) == (
        1,
        7,
        1,
    )
    # The source's HEAD before the upload, the copy's HEAD after, and the read back of its MD5.
    assert (requests.head_object, requests.get_object, requests.read_back_bytes) == (2, 1, 250)
    assert (requests.archive_upload_part_copy, requests.archive_head_object, requests.archive_copy_object) == (7, 1, 0)
    assert bundle_requests([move(1, 250, md5_known=False)], SIZES).get_object == 0


def test_an_object_shared_by_two_handles_is_copied_for_each_and_archived_once():
    requests = bundle_requests([move(1, 10, key="same"), move(2, 10, key="same")], SIZES)
    assert (requests.copy_object, requests.archive_copy_object) == (2, 1)


def test_an_object_another_handle_keeps_is_not_archived():
    requests = bundle_requests([move(1, 10, archived=False)], SIZES)
    assert (requests.archive_writes, requests.archived_bytes) == (0, 0)


def test_the_look_at_the_objects_takes_a_page_per_thousand_dense_keys_or_one_per_key():
    moves = [move(i, 1) for i in range(2500)] + [move(9000, 1, bucket="other")]
    requests = listing_requests(moves)
    # Sources: 3 pages in "d", 1 in "other"; the target's 2501 keys: 3 pages.
    assert (requests.list_objects_min, requests.list_objects_max) == (7, 2500 + 1 + 2501)
    assert bundle_requests([], SIZES) == Requests()


def test_requests_add_up_field_by_field():
    assert Requests(copy_object=1, head_object=2) + Requests(copy_object=3) == Requests(copy_object=4, head_object=2)


def test_moving_bytes_between_standard_buckets_changes_no_lasting_total():
    prices = PriceTable()
    moves = [move(1, 10**9), move(2, 10**9)]
    requests = bundle_requests(moves, CopySizes(multipart_threshold=5 * 10**9, part_size=10**9))
    costs = costs_of(moves, requests, "target", GLACIER_YEAR, prices)
    by_bucket = {change.bucket: change for change in costs.buckets}
    assert by_bucket["target"].live_bytes == 2 * 10**9 and by_bucket["d"].live_bytes == -2 * 10**9
    assert costs.monthly_live == pytest.approx(0)
    # The archive copies are what the bill gains: a year of GLACIER, and GLACIER's monthly rate meanwhile.
    assert costs.archive_storage == pytest.approx(2 * 0.0036 * 365 / 30)
    assert costs.monthly_during_retention == pytest.approx(2 * 0.0036)
    assert costs.archive_requests == pytest.approx(2 * 0.03 / 1000)
    assert costs.copy_requests == pytest.approx(2 * 0.005 / 1000)


def test_a_short_retention_is_billed_for_the_minimum_duration():
    archive = Archive("GLACIER", retention_days=30, grace_seconds=0)
    costs = costs_of([move(1, 10**9)], Requests(), "target", archive, PriceTable())
    assert costs.archive_storage == pytest.approx(0.0036 * 90 / 30)


def test_a_source_kept_live_adds_its_copy_and_the_grace_period_doubles_storage_for_a_while():
    kept = costs_of([move(1, 10**9, archived=False)], Requests(), "target", GLACIER_YEAR, PriceTable())
    assert kept.monthly_live == pytest.approx(0.023)
    assert kept.archive_storage == 0
    graced = costs_of([move(1, 10**9)], Requests(), "target", Archive("GLACIER", 365, 3 * 86_400), PriceTable())
    assert graced.grace_storage == pytest.approx(0.023 * 3 / 30)


def test_time_is_the_serial_listing_plus_the_pooled_work_bounded_by_the_longest_request():
    model = TimeModel(latency_seconds=0.1, bytes_per_second=100, copy_concurrency=4, bundle_concurrency=2)
    small = BundleWork(Requests(list_objects_min=2, copy_object=8, copied_bytes=400), longest_transfer=50)
    # 0.2 s of listing, then (8 x 0.1 + 400/100) / 4 = 1.2 s.
    assert bundle_seconds(small, model) == pytest.approx(1.4)
    big = BundleWork(Requests(copy_object=1, copied_bytes=1000), longest_transfer=1000)
    assert bundle_seconds(big, model) == pytest.approx(10.1)
    assert total_seconds([small, small], model) == pytest.approx(1.4)
    assert total_seconds([small, small, small, small], model) == pytest.approx(2.8)
    assert total_seconds([], model) == 0
    assert longest_transfer([move(1, 250), move(2, 60)], SIZES) == 60


def test_a_hypothetical_placement_changes_only_the_project_target():
    placement = Placement("default", frozenset({"a"}), {1: "a", 2: "a"}, {"default": 1, "a": 2})
    assigned = placement_with(placement, 3, "new-bucket")
    assert assigned.target_bucket(3) == "new-bucket" and assigned.target_bucket(1) == "a"
    assert assigned.managed_buckets == {"default", "a", "new-bucket"}
    unassigned = placement_with(placement, 1, "default")
    assert unassigned.target_bucket(1) == "default" and unassigned.target_bucket(2) == "a"
    assert placement.target_bucket(1) == "a", "the placement itself is left as it was"
