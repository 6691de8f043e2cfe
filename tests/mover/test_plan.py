from costalloc_pipeline.mover.plan import Candidate, plan_bundles


def candidates(count: int, size: int = 10, shared_every: int = 0) -> list[Candidate]:
    return [Candidate(i, "default", f"k{i // shared_every if shared_every else i}", size) for i in range(count)]


def test_bundles_respect_file_and_byte_bounds():
    plan = plan_bundles(candidates(100, size=10), max_files=30, max_bytes=250, max_bundles=50)
    assert sum(b.files for b in plan.bundles) == 100
    assert all(b.files <= 30 and b.bytes <= 250 for b in plan.bundles)
    assert plan.deferred_files == 0


def test_many_files_grow_bundles_instead_of_exceeding_max_bundles():
    plan = plan_bundles(candidates(10_000, size=1), max_files=10, max_bytes=10**9, max_bundles=100)
    assert len(plan.bundles) == 100
    assert sum(b.files for b in plan.bundles) == 10_000


def test_bytes_bound_defers_what_does_not_fit():
    plan = plan_bundles(candidates(10, size=100), max_files=100, max_bytes=200, max_bundles=2)
    assert [b.files for b in plan.bundles] == [2, 2]
    assert (plan.deferred_files, plan.deferred_bytes) == (6, 600)


def test_an_object_larger_than_the_byte_bound_gets_a_bundle_of_its_own():
    plan = plan_bundles([Candidate(1, "b", "big", 10_000), Candidate(2, "b", "small", 1)], 10, 100, 10)
    assert [b.handle_ids for b in plan.bundles] == [[1], [2]]


def test_handles_sharing_an_object_stay_in_one_bundle_and_count_its_bytes_once():
    plan = plan_bundles(candidates(40, size=5, shared_every=4), max_files=6, max_bytes=1000, max_bundles=100)
    for bundle in plan.bundles:
        keys = {i // 4 for i in bundle.handle_ids}
        assert all(set(range(k * 4, k * 4 + 4)) <= set(bundle.handle_ids) for k in keys)
        assert bundle.bytes == 5 * len(keys)
