"""The sensor's decision, without Dagster or a database: which runs, which partitions, which cursor."""

from __future__ import annotations

from costalloc_pipeline.changes import Change, RunRequest, decide, rereads

ACTIVE, REMOVING, REMOVED = "ACTIVE", "REMOVING", "REMOVED"


def test_one_run_per_project_for_its_latest_change_and_a_partition_for_each_new_project() -> None:
    changes = [Change(1, 10, ACTIVE), Change(2, 20, ACTIVE), Change(3, 10, ACTIVE)]
    decision = decide(changes, 0, partitions=[], requested_before=set())
    assert decision.runs == [RunRequest("association-change-3", 10), RunRequest("association-change-2", 20)]
    assert (decision.add_projects, decision.cursor) == ([10, 20], 3)


def test_a_reread_change_whose_run_exists_is_not_requested_again() -> None:
    changes = [Change(5, 10, ACTIVE), Change(7, 20, REMOVING)]
    assert rereads(changes, high_water=6) == [Change(5, 10, ACTIVE)]
    decision = decide(changes, 6, partitions=[10, 20], requested_before={"association-change-5"})
    assert decision.runs == [RunRequest("association-change-7", 20)]
    assert decision.cursor == 7


def test_a_removed_association_requests_nothing_and_its_partition_stays() -> None:
    # The decision has no way to drop a partition: the project's history stays on it.
    gone = decide([Change(8, 10, REMOVED)], 7, partitions=[10], requested_before=set())
    assert (gone.runs, gone.add_projects, gone.cursor) == ([], [], 8)


def test_a_project_assigned_again_reuses_its_partition() -> None:
    back = decide([Change(8, 10, REMOVED), Change(9, 10, ACTIVE)], 7, partitions=[10], requested_before=set())
    assert (back.runs, back.add_projects) == ([RunRequest("association-change-9", 10)], [])


def test_nothing_read_keeps_the_cursor() -> None:
    decision = decide([], 42, partitions=[10], requested_before=set())
    assert (decision.runs, decision.add_projects, decision.cursor) == ([], [], 42)
