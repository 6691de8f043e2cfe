"""The daily finish_moves job archives what a project left behind, even once it has no runs."""

from __future__ import annotations

import time

import dagster as dg
from faults.repository import make_repo

from costalloc_pipeline.defs.assets.recovery import finish_moves
from costalloc_pipeline.defs.location import build_resources
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.schema.repository import MoveState

PROJECT = 10
GRACE = 1


def test_sources_past_their_grace_period_are_archived_by_the_job(settings, entities):
    settings = settings.with_changes(archive_grace_seconds=GRACE)
    repo = make_repo(settings, entities)
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    result = move_bundle(repo.context(PROJECT, archive_grace_seconds=GRACE), list(originals))
    assert (result.moved_files, result.archived_objects, result.archives_pending) == (3, 0, 3)
    repo.end_run(PROJECT, "run-1")
    # No relocation run of the project comes after it (it has nothing left to move).
    time.sleep(GRACE + 0.2)

    with dg.instance_for_test() as instance:
        finished = finish_moves.execute_in_process(instance=instance, resources=build_resources(settings))
    assert finished.success
    for handle_id in originals:
        assert repo.ledger_states(handle_id) == [MoveState.DONE.value]
        assert repo.handle(handle_id).bucket_name == target
    assert all(repo.storage_class(repo.settings.default_bucket, repo.handle(h).key) == "GLACIER" for h in originals)
    repo.assert_intact(originals)
    assert repo.audit().counts == {}
