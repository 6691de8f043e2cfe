"""The files-out-of-place query, the placement of projects, and conflict detection."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from helpers.backends import postgresql_only
from helpers.repository_builder import (
    RepositoryBuilder,
    Scenario,
    bootstrapped_builder,
    build_scenario,
)
from sqlalchemy import delete, update
from sqlalchemy.engine import make_url

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import dispose_engine, engine_for
from costalloc_pipeline.errors import NotFound
from costalloc_pipeline.placement.misplaced import (
    CONFLICT_COLUMNS,
    OUT_OF_PLACE_SCHEMA,
    SHARING_SCHEMA,
    files_out_of_place,
    find_out_of_place,
    split_conflicts,
)
from costalloc_pipeline.placement.rule import Placement, load_placement
from costalloc_pipeline.replica.refresh import (
    refresh_entity_replication,
    refresh_file_replication,
)
from costalloc_pipeline.schema.repository import files, storage_location

EXPECTED_DTYPES = {
    "file_handle_id": "Int64",
    "etag": "str",
    "bucket_name": "str",
    "key": "str",
    "content_size": "Int64",
    "content_md5": "str",
    "storage_location_id": "Int64",
    "is_preview": "bool",
}


@pytest.fixture
def builder(settings: Settings) -> RepositoryBuilder:
    return bootstrapped_builder(settings)


def _replicate(settings: Settings) -> None:
    repository, replica = engine_for(settings.repository_url), engine_for(settings.replica_url)
    refresh_entity_replication(repository, replica)
    refresh_file_replication(repository, replica)


@pytest.fixture
def scenario(settings: Settings, builder: RepositoryBuilder) -> Scenario:
    built = build_scenario(builder)
    _replicate(settings)
    return built


def _ids(frame: pd.DataFrame) -> set[int]:
    return set(frame["file_handle_id"].astype(int))


def test_placement_follows_the_associations(settings, scenario):
    placement = load_placement(engine_for(settings.repository_url))

    assert placement.default_bucket == scenario.default_bucket
    assert placement.managed_buckets == {scenario.default_bucket, scenario.alpha_bucket, scenario.beta_bucket}
    assert placement.target_bucket(scenario.alpha_project) == scenario.alpha_bucket
    assert placement.target_bucket(scenario.beta_project) == scenario.beta_bucket
    assert placement.target_bucket(scenario.removing_project) == scenario.default_bucket
    assert placement.target_bucket(scenario.plain_project) == scenario.default_bucket


def test_every_version_and_preview_outside_the_target_bucket_once(settings, scenario):
    placement = load_placement(engine_for(settings.repository_url))

    frame = files_out_of_place(
        engine_for(settings.replica_url), scenario.alpha_project, scenario.alpha_bucket, placement.managed_buckets
    )

    assert _ids(frame) == scenario.ids(
        "versioned",
        "preview_1",
        "shared_by_versions",
        "preview_of_placed",
        "in_beta",
        "shared_with_plain",
        "shared_with_partner",
        "shared_preview",
        "with_shared_preview",
    )
    assert frame["file_handle_id"].is_unique
    previews = set(frame.loc[frame["is_preview"], "file_handle_id"].astype(int))
    assert previews == scenario.ids("preview_1", "preview_of_placed", "shared_preview")
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == EXPECTED_DTYPES
    row = frame.set_index("file_handle_id").loc[scenario.handles["in_beta"]]
    assert (row["bucket_name"], row["content_size"], row["storage_location_id"]) == (scenario.beta_bucket, 300, 1)
    assert row["key"] == f"1/{scenario.handles['in_beta']}/file{scenario.handles['in_beta']}.txt"


def test_a_preview_of_several_handles_comes_once_and_an_own_handle_as_a_preview_counts_as_own(settings, builder):
    project = builder.project()
    shared = builder.preview()
    first, second = builder.handle(preview_id=shared), builder.handle(preview_id=shared)
    # A version of the project names a handle that is also another handle's preview.
    own_preview = builder.handle()
    with_own_preview = builder.handle(preview_id=own_preview)
    builder.file_entity(project, first, second, own_preview, with_own_preview)
    _replicate(settings)
    placement = load_placement(engine_for(settings.repository_url))

    frame = files_out_of_place(engine_for(settings.replica_url), project, "elsewhere", placement.managed_buckets)

    assert frame["file_handle_id"].is_unique
    assert dict(zip(frame["file_handle_id"].astype(int), frame["is_preview"], strict=True)) == {
        first: False,
        second: False,
        own_preview: False,
        with_own_preview: False,
        shared: True,
    }


def test_conflicting_handles_are_set_apart(settings, scenario):
    placement = load_placement(engine_for(settings.repository_url))

    found = find_out_of_place(engine_for(settings.replica_url), scenario.alpha_project, placement)

    assert found.target_bucket == scenario.alpha_bucket
    assert _ids(found.to_move) == scenario.ids(
        "versioned",
        "preview_1",
        "shared_by_versions",
        "preview_of_placed",
        "in_beta",
        "shared_with_partner",
        "with_shared_preview",
    )
    assert list(found.conflicts.columns) == CONFLICT_COLUMNS
    conflicts = {
        (int(row.file_handle_id), int(row.other_project_id), row.other_target_bucket)
        for row in found.conflicts.itertuples()
    }
    assert conflicts == {
        (scenario.handles["shared_with_plain"], scenario.plain_project, scenario.default_bucket),
        (scenario.handles["shared_preview"], scenario.plain_project, scenario.default_bucket),
    }


def test_a_removing_project_goes_back_to_the_default_bucket(settings, scenario):
    placement = load_placement(engine_for(settings.repository_url))

    found = find_out_of_place(engine_for(settings.replica_url), scenario.removing_project, placement)

    assert found.target_bucket == scenario.default_bucket
    assert _ids(found.to_move) == scenario.ids("removing_in_alpha")
    assert found.conflicts.empty


def test_nothing_to_move_keeps_the_columns(settings, scenario):
    placement = load_placement(engine_for(settings.repository_url))
    replica = engine_for(settings.replica_url)

    for project in (scenario.plain_project, 999_999_999):
        found = find_out_of_place(replica, project, placement)
        assert found.to_move.empty and found.conflicts.empty
        assert {name: str(dtype) for name, dtype in found.to_move.dtypes.items()} == EXPECTED_DTYPES


def test_awkward_keys_and_missing_values_survive_the_transfer(settings, builder):
    project = builder.project()
    awkward = 'lab "A", run 1\nnext line/ü ✓.csv'
    odd = builder.handle(key=awkward, size=None, md5="")
    plain = builder.handle(key="", md5=None)
    builder.file_entity(project, odd, plain)
    _replicate(settings)
    placement = load_placement(engine_for(settings.repository_url))

    frame = files_out_of_place(engine_for(settings.replica_url), project, "elsewhere", placement.managed_buckets)

    rows = frame.set_index("file_handle_id")
    assert rows.loc[odd, "key"] == awkward
    assert pd.isna(rows.loc[odd, "content_size"])
    assert rows.loc[odd, "content_md5"] == ""
    assert rows.loc[plain, "key"] == ""
    assert pd.isna(rows.loc[plain, "content_md5"])


def test_replica_staleness_is_visible_until_the_next_refresh(settings, scenario):
    # The mover re-reads handles; the dataset itself reflects the replica, not the live repository.
    handle = scenario.handles["in_beta"]
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(update(files).where(files.c.id == handle).values(bucket_name=scenario.alpha_bucket, etag="new"))
    placement = load_placement(engine_for(settings.repository_url))
    replica = engine_for(settings.replica_url)
    assert handle in _ids(find_out_of_place(replica, scenario.alpha_project, placement).to_move)

    refresh_file_replication(engine_for(settings.repository_url), replica)

    assert handle not in _ids(find_out_of_place(replica, scenario.alpha_project, placement).to_move)


def test_missing_default_storage_location_is_a_clear_error(settings, builder):
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(delete(storage_location))

    with pytest.raises(NotFound, match="default storage location"):
        load_placement(engine_for(settings.repository_url))


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=OUT_OF_PLACE_SCHEMA)


def _row(handle_id: int, size: int = 10) -> dict:
    return {
        "file_handle_id": handle_id,
        "etag": f"e{handle_id}",
        "bucket_name": "default",
        "key": f"k{handle_id}",
        "content_size": size,
        "content_md5": None,
        "storage_location_id": 1,
        "is_preview": False,
    }


def test_split_conflicts_compares_targets_not_mere_sharing():
    placement = Placement(
        "default",
        frozenset({"alpha", "beta"}),
        {1: "alpha", 2: "alpha", 3: "beta"},
        {"default": 1, "alpha": 2, "beta": 3},
    )
    # Two blocks, as they arrive from the replica; the split empties the list as it reads it.
    misplaced = [_table([_row(10), _row(11)]), _table([_row(12), _row(13)])]
    sharing = pa.table(
        {
            # 11: same allocation, fine. 12: another allocation and no allocation. 13: a REMOVING or plain project.
            "file_handle_id": pa.array([11, 12, 12, 13], pa.int64()),
            "other_project_id": pa.array([2, 3, 4, 5], pa.int64()),
        },
        schema=SHARING_SCHEMA,
    )

    found = split_conflicts(misplaced, sharing, placement, project_id=1)

    assert misplaced == []
    assert _ids(found.to_move) == {10, 11}
    assert [
        (int(row.file_handle_id), int(row.other_project_id), row.other_target_bucket)
        for row in found.conflicts.itertuples()
    ] == [(12, 3, "beta"), (12, 4, "default"), (13, 5, "default")]


@postgresql_only
def test_another_postgresql_driver_takes_the_portable_path(settings, builder):
    url = make_url(settings.replica_url)
    psycopg2_url = url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    built = build_scenario(builder)
    engine = engine_for(psycopg2_url)
    try:
        refresh_entity_replication(engine, engine)
        refresh_file_replication(engine, engine)
        found = find_out_of_place(engine, built.alpha_project, load_placement(engine))
    finally:
        dispose_engine(psycopg2_url)

    assert _ids(found.to_move) == built.ids(
        "versioned",
        "preview_1",
        "shared_by_versions",
        "preview_of_placed",
        "in_beta",
        "shared_with_partner",
        "with_shared_preview",
    )
    assert _ids(found.conflicts) == built.ids("shared_with_plain", "shared_preview")
