"""files_out_of_place against a reference: the rule applied in plain Python to every replica row.

The planner reads a project's rows in blocks (COPY on PostgreSQL, a cursor elsewhere), keeps a
block whole when all its rows are misplaced, sets the previews apart and deduplicates them, and
splits conflicts block by block. Here the blocks are made tiny so that every one of those paths
runs, on rows chosen to be awkward, and the result must be exactly what the reference says.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers.repository_builder import (
    RepositoryBuilder,
    bootstrapped_builder,
    build_awkward_project,
    build_scenario,
)
from sqlalchemy import select

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.placement import arrow_blocks
from costalloc_pipeline.placement.misplaced import HANDLE_SCHEMA, find_out_of_place
from costalloc_pipeline.placement.rule import Placement, load_placement
from costalloc_pipeline.replica.refresh import refresh_entity_replication, refresh_file_replication
from costalloc_pipeline.schema.replica import entity_replication, file_replication

Row = tuple[Any, ...]


@pytest.fixture
def builder(settings: Settings) -> RepositoryBuilder:
    return bootstrapped_builder(settings)


def _reference(
    replica_rows: tuple[list[Row], dict[int, dict[str, Any]]], placement: Placement, project_id: int
) -> tuple[dict[int, Row], set[tuple[int, int, str]]]:
    """The misplaced handles to move (by id: HANDLE_SCHEMA's columns after the id, and is_preview)
    and the conflicts (handle, other project, its bucket), decided handle by handle with the rule."""
    references, handles = replica_rows
    target = placement.target_bucket(project_id)
    own = {handle_id for handle_id, project in references if project == project_id and handle_id in handles}
    previews = {handles[h]["preview_id"] for h in own if handles[h]["preview_id"] is not None}
    # Every project referencing each handle: directly, or through a handle whose preview it is.
    projects: dict[int, set[int]] = {}
    for handle_id, project in references:
        if handle_id in handles:
            projects.setdefault(handle_id, set()).add(project)
            if handles[handle_id]["preview_id"] is not None:
                projects.setdefault(handles[handle_id]["preview_id"], set()).add(project)
    to_move: dict[int, Row] = {}
    conflicts: set[tuple[int, int, str]] = set()
    for handle_id in (own | previews) & handles.keys():
        handle = handles[handle_id]
        if not placement.is_managed(handle["metadata_type"], handle["bucket_name"]) or handle["bucket_name"] == target:
            continue
        disagreeing = placement.conflicting(project_id, projects[handle_id])
        if disagreeing:
            conflicts |= {(handle_id, other, placement.target_bucket(other)) for other in disagreeing}
        else:
            to_move[handle_id] = (*(handle[name] for name in HANDLE_SCHEMA.names[1:]), handle_id not in own)
    return to_move, conflicts


def _replica_rows(settings: Settings) -> tuple[list[Row], dict[int, dict[str, Any]]]:
    """Every (file_handle_id, project_id) of entity_replication, and every handle of file_replication."""
    columns = ["id", "preview_id", "metadata_type", *HANDLE_SCHEMA.names[1:]]
    with engine_for(settings.replica_url).connect() as conn:
        references = [tuple(row) for row in conn.execute(select(entity_replication.c["file_handle_id", "project_id"]))]
        handles = {
            row.id: dict(zip(["file_handle_id", *columns[1:]], row, strict=True))
            for row in conn.execute(select(*(file_replication.c[name] for name in columns)))
        }
    return references, handles


@pytest.mark.parametrize("block_rows", [1, 3, 1000])
def test_the_planner_returns_exactly_what_the_rule_says_row_by_row(settings, builder, monkeypatch, block_rows):
    # Tiny blocks: a handful of rows per block on every backend (bytes of CSV on PostgreSQL).
    monkeypatch.setattr(arrow_blocks, "FETCH_ROWS", block_rows)
    monkeypatch.setattr(arrow_blocks, "CSV_BLOCK_BYTES", block_rows * 120)
    scenario = build_scenario(builder)
    build_awkward_project(builder, scenario.alpha_project, scenario.plain_project, scenario.alpha_bucket)
    repository, replica = engine_for(settings.repository_url), engine_for(settings.replica_url)
    refresh_entity_replication(repository, replica)
    refresh_file_replication(repository, replica)
    placement = load_placement(repository)
    rows = _replica_rows(settings)

    for project in (scenario.alpha_project, scenario.removing_project, scenario.plain_project):
        found = find_out_of_place(replica, project, placement)
        expected_moves, expected_conflicts = _reference(rows, placement, project)

        names = [*HANDLE_SCHEMA.names[1:], "is_preview"]
        moves = {
            int(row["file_handle_id"]): tuple(None if _missing(row[name]) else row[name] for name in names)
            for row in found.to_move.to_dict("records")
        }
        assert len(found.to_move) == len(moves)
        assert moves == expected_moves
        conflicts = {
            (int(row.file_handle_id), int(row.other_project_id), row.other_target_bucket)
            for row in found.conflicts.itertuples()
        }
        assert conflicts == expected_conflicts
        assert len(found.conflicts) == len(expected_conflicts)
        if project == scenario.alpha_project:
            # The awkward project has conflicts of both kinds, and previews to move.
            assert len({handle for handle, _, _ in conflicts}) == 4
            assert found.to_move["is_preview"].sum() >= 3


def _missing(value: object) -> bool:
    # pandas gives NA for a NULL size or location, NaN for a NULL string.
    return value is None or value != value or str(value) == "<NA>"
