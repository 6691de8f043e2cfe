"""A project's progress toward zero misplaced bytes, read from the live repository (the check's figures)."""

from __future__ import annotations

import pytest
from helpers.repository_builder import RepositoryBuilder, Scenario, bootstrapped_builder, build_scenario
from sqlalchemy import insert

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.placement import progress as progress_module
from costalloc_pipeline.placement.progress import Progress, project_progress, projects_progress
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.schema.repository import MoveState, move_ledger


@pytest.fixture
def builder(settings: Settings) -> RepositoryBuilder:
    return bootstrapped_builder(settings)


@pytest.fixture
def scenario(builder: RepositoryBuilder) -> Scenario:
    return build_scenario(builder)


def _attempt(settings: Settings, scenario: Scenario, handle: str, state: MoveState, size: int) -> None:
    now = utcnow()
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(
            insert(move_ledger).values(
                run_id="run-1",
                project_id=scenario.alpha_project,
                file_handle_id=scenario.handles[handle],
                source_bucket=scenario.default_bucket,
                source_key="k",
                target_bucket=scenario.alpha_bucket,
                target_storage_location_id=2,
                content_size=size,
                state=state.value,
                started_on=now,
                updated_on=now,
            )
        )


def _alpha(settings: Settings, scenario: Scenario) -> Progress:
    with engine_for(settings.repository_url).connect() as conn:
        return project_progress(conn, scenario.alpha_project, load_placement(conn))


def test_misplaced_placed_and_conflicting_handles_are_counted_apart(settings, scenario):
    progress = _alpha(settings, scenario)

    # What files_out_of_place would move: versions, previews (of placed handles too), a handle in
    # another allocation's bucket, a handle shared with a project of the same allocation.
    assert (progress.misplaced_files, progress.misplaced_bytes) == (7, 100 + 10 + 100 + 10 + 300 + 100 + 100)
    assert (progress.placed_files, progress.placed_bytes) == (1, 100)
    # Shared with the plain project (directly, and as the preview of one of its handles).
    assert (progress.conflict_files, progress.conflict_bytes) == (2, 4000 + 10)
    assert (progress.moved_bytes, progress.failed_files) == (0, 0)
    assert progress.target_bucket == scenario.alpha_bucket


def test_failed_attempts_count_only_for_handles_still_misplaced_and_movable(settings, scenario):
    _attempt(settings, scenario, "in_beta", MoveState.FAILED, 300)
    # A conflict is never moved, and a placed handle is done, whatever an old attempt says.
    _attempt(settings, scenario, "shared_with_plain", MoveState.FAILED, 4000)
    _attempt(settings, scenario, "placed", MoveState.FAILED, 100)
    _attempt(settings, scenario, "placed", MoveState.DONE, 100)
    _attempt(settings, scenario, "versioned", MoveState.REPOINTED, 100)
    _attempt(settings, scenario, "preview_1", MoveState.STARTED, 10)

    progress = _alpha(settings, scenario)

    assert progress.failed_files == 1
    assert progress.moved_bytes == 200


def test_conflict_sizes_read_a_few_ids_at_a_time_give_the_same_progress(settings, scenario, monkeypatch):
    whole = _alpha(settings, scenario)
    monkeypatch.setattr(progress_module, "IDS_PER_QUERY", 1)

    assert _alpha(settings, scenario) == whole


def test_a_project_without_files_or_allocation_is_done(settings, scenario):
    with engine_for(settings.repository_url).connect() as conn:
        plain, unknown = projects_progress(conn, [scenario.plain_project, 999_999_999])

    # The plain project's handles are all in the default bucket, its target; one is shared with alpha.
    assert (plain.misplaced_files, plain.conflict_files, plain.placed_files) == (0, 0, 3)
    assert plain.percent_done == 100.0
    assert (unknown.misplaced_files, unknown.placed_files, unknown.conflict_files) == (0, 0, 0)
    assert unknown.percent_done == 100.0
