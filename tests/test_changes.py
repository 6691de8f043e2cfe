"""The sensor's decision, without Dagster or a database: which runs, which partitions, which cursor."""

from __future__ import annotations

from costalloc_pipeline.changes import Change, RunRequest, decide, rereads

ACTIVE, REMOVING, REMOVED = "ACTIVE", "REMOVING", "REMOVED"


def test_one_run_per_project_for_its_latest_change_and_a_partition_for_each_new_project() -> None:
    changes = [Change(1, 10, ACTIVE), Change(2, 20, ACTIVE), Change(3, 10, ACTIVE)]
    decision = decide(changes, 0, associated=[10, 20], partitions=[], requested_before=set())
    assert decision.runs == [RunRequest("association-change-3", 10), RunRequest("association-change-2", 20)]
    assert (decision.add_projects, decision.delete_projects, decision.cursor) == ([10, 20], [], 3)


def test_a_reread_change_whose_run_exists_is_not_requested_again() -> None:
    changes = [Change(5, 10, ACTIVE), Change(7, 20, REMOVING)]
    assert rereads(changes, high_water=6) == [Change(5, 10, ACTIVE)]
    decision = decide(changes, 6, associated=[10, 20], partitions=[10, 20], requested_before={"association-change-5"})
    assert decision.runs == [RunRequest("association-change-7", 20)]
    assert decision.cursor == 7


def test_a_removed_association_drops_its_partition_unless_the_project_is_associated_again() -> None:
    gone = decide([Change(8, 10, REMOVED)], 7, associated=[], partitions=[10], requested_before=set())
    assert (gone.runs, gone.add_projects, gone.delete_projects) == ([], [], [10])
    back = decide([Change(8, 10, REMOVED)], 7, associated=[10], partitions=[10], requested_before=set())
    assert back.delete_projects == []


def test_nothing_read_keeps_the_cursor() -> None:
    decision = decide([], 42, associated=[10], partitions=[10], requested_before=set())
    assert (decision.runs, decision.add_projects, decision.delete_projects, decision.cursor) == ([], [], [], 42)
