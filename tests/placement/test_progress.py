"""A project's progress toward zero misplaced bytes, read from the live repository (the check's figures)."""

from __future__ import annotations

import pytest
from helpers.repository_builder import (
    RepositoryBuilder,
    Scenario,
    bootstrapped_builder,
    build_awkward_project,
    build_scenario,
)
from sqlalchemy import insert, select, update

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.placement import progress as progress_module
from costalloc_pipeline.placement.progress import Progress, project_progress, projects_progress
from costalloc_pipeline.placement.rule import Placement, load_placement
from costalloc_pipeline.schema.repository import (
    FileStatus,
    MoveState,
    NodeType,
    files,
    move_ledger,
    node,
    node_revision,
)


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


def _expected(settings: Settings, placement: Placement, project_id: int) -> tuple[int, int, int, int, int, int]:
    """(misplaced files, bytes, placed files, bytes, conflict files, bytes): the rule applied
    handle by handle in Python to every row of the live repository."""
    with engine_for(settings.repository_url).connect() as conn:
        versions = conn.execute(
            select(node_revision.c.file_handle_id, node.c.project_id)
            .join(node, node.c.id == node_revision.c.owner_node_id)
            .where(node.c.node_type == NodeType.FILE.value, node_revision.c.file_handle_id.is_not(None))
        ).all()
        handles = {row.id: row for row in conn.execute(select(files))}
    referencing: dict[int, set[int]] = {}
    for handle_id, project in versions:
        for reached in (handle_id, handles[handle_id].preview_id):
            if reached is not None:
                referencing.setdefault(reached, set()).add(project)
    own = {handle_id for handle_id, project in versions if project == project_id}
    project_handles = own | {handles[h].preview_id for h in own if handles[h].preview_id is not None}
    target = placement.target_bucket(project_id)
    figures = [0] * 6
    for handle in (handles[h] for h in project_handles):
        if handle.status != FileStatus.AVAILABLE.value or not placement.is_managed(
            handle.metadata_type, handle.bucket_name
        ):
            continue
        size = handle.content_size or 0
        if handle.bucket_name == target:
            at = 2
        elif placement.conflicting(project_id, referencing[handle.id]):
            at = 4
        else:
            at = 0
        figures[at] += 1
        figures[at + 1] += size
    misplaced_files, misplaced_bytes, placed_files, placed_bytes, conflict_files, conflict_bytes = figures
    return misplaced_files, misplaced_bytes, placed_files, placed_bytes, conflict_files, conflict_bytes


def test_every_project_is_counted_as_the_rule_says_handle_by_handle(settings, builder, scenario):
    build_awkward_project(builder, scenario.alpha_project, scenario.plain_project, scenario.alpha_bucket)
    # A handle the project names that is no longer AVAILABLE counts nowhere.
    gone = builder.handle(size=5)
    builder.file_entity(scenario.alpha_project, gone)
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(update(files).where(files.c.id == gone).values(status=FileStatus.UNLINKED.value))
    # A misplaced handle named as its own preview counts once.
    own_preview = builder.handle(size=7)
    builder.file_entity(scenario.alpha_project, own_preview)
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(update(files).where(files.c.id == own_preview).values(preview_id=own_preview))

    with engine_for(settings.repository_url).connect() as conn:
        placement = load_placement(conn)
        found = projects_progress(conn, [scenario.alpha_project, scenario.plain_project, scenario.removing_project])

    for progress in found:
        assert (
            progress.misplaced_files,
            progress.misplaced_bytes,
            progress.placed_files,
            progress.placed_bytes,
            progress.conflict_files,
            progress.conflict_bytes,
        ) == _expected(settings, placement, progress.project_id)
    # The awkward project has conflicts of both kinds (directly and through a preview).
    assert found[0].conflict_files == 2 + 2


def test_the_check_leaves_the_callers_transaction_open_and_its_connection_reusable(settings, scenario):
    engine = engine_for(settings.repository_url)
    with engine.connect() as conn:
        placement = load_placement(conn)
        conn.commit()
        # Something the caller wrote and has not committed: MySQL would commit it on any DDL
        # statement other than CREATE or DROP TEMPORARY TABLE.
        conn.execute(update(files).where(files.c.id == scenario.handles["placed"]).values(content_size=12345))
        first = project_progress(conn, scenario.alpha_project, placement)
        second = project_progress(conn, scenario.alpha_project, placement)
        conn.rollback()
        third = project_progress(conn, scenario.alpha_project, placement)

    assert first == second
    assert first.placed_bytes == 12345
    assert third.placed_bytes == 100
