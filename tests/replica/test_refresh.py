"""Incremental and full replication of the repository into the replica tables."""

from __future__ import annotations

import datetime as dt
import threading
from typing import NamedTuple

import pytest
from helpers.repository_builder import RepositoryBuilder, bootstrapped_builder
from sqlalchemy import delete, select, text, update

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import dispose_engine, engine_for
from costalloc_pipeline.replica.refresh import (
    OVERLAP,
    refresh_entity_replication,
    refresh_file_replication,
)
from costalloc_pipeline.replica.statistics import ANALYZE_ROWS, should_analyze
from costalloc_pipeline.schema.migrate import upgrade
from costalloc_pipeline.schema.replica import entity_replication, file_replication, replication_watermark
from costalloc_pipeline.schema.repository import files, node, node_revision


@pytest.fixture
def builder(settings: Settings) -> RepositoryBuilder:
    return bootstrapped_builder(settings)


def _refresh(settings: Settings, full_refresh: bool = False):
    repository, replica = engine_for(settings.repository_url), engine_for(settings.replica_url)
    return (
        refresh_entity_replication(repository, replica, full_refresh),
        refresh_file_replication(repository, replica, full_refresh),
    )


def _entities(settings: Settings) -> set[tuple]:
    with engine_for(settings.replica_url).connect() as conn:
        return {tuple(row) for row in conn.execute(select(entity_replication))}


def _handles(settings: Settings) -> dict[int, tuple]:
    with engine_for(settings.replica_url).connect() as conn:
        rows = conn.execute(select(file_replication.c.id, file_replication.c.etag, file_replication.c.bucket_name))
        return {row.id: (row.etag, row.bucket_name) for row in rows}


def test_first_refresh_copies_every_file_version_and_handle(settings, builder):
    project, other = builder.project(), builder.project()
    preview = builder.preview()
    first, second = builder.handle(preview_id=preview, size=1000), builder.handle(size=24)
    entity = builder.file_entity(project, first, second, second)
    moved_in = builder.file_entity(other, second)
    builder.folder(project)
    orphan = builder.handle()
    builder.file_entity(None, orphan)

    entities, handles = _refresh(settings)

    assert _entities(settings) == {
        (entity, 1, project, first),
        (entity, 2, project, second),
        (entity, 3, project, second),
        (moved_in, 1, other, second),
    }
    assert set(_handles(settings)) == {preview, first, second, orphan}
    assert (entities.full_refresh, entities.rows_upserted, entities.total_rows) == (True, 4, 4)
    assert (handles.full_refresh, handles.rows_upserted, handles.total_rows) == (True, 4, 4)
    assert handles.total_bytes == 10 + 1000 + 24 + 100
    assert entities.total_bytes is None


def test_refresh_without_changes_rewrites_nothing(settings, builder):
    builder.file_entity(builder.project(), builder.handle(), builder.handle())
    _refresh(settings)

    entities, handles = _refresh(settings)

    assert not entities.full_refresh and not handles.full_refresh
    assert entities.rows_upserted == handles.rows_upserted == 0
    # Rows inside the overlap are read again, but compared and left alone.
    assert handles.rows_read == 2 and handles.total_rows == 2


def test_changed_handle_is_upserted_by_etag(settings, builder):
    handle = builder.handle()
    builder.file_entity(builder.project(), handle)
    _refresh(settings)
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(
            update(files)
            .where(files.c.id == handle)
            .values(etag="moved", bucket_name="test-ca-alpha", updated_on=builder.now + dt.timedelta(minutes=1))
        )

    _, handles = _refresh(settings)

    assert handles.rows_upserted == 1
    assert _handles(settings)[handle] == ("moved", "test-ca-alpha")


def test_entity_moved_to_another_project_is_replicated_again(settings, builder):
    source, destination = builder.project(), builder.project()
    handle = builder.handle()
    entity = builder.file_entity(source, handle, handle)
    _refresh(settings)
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(
            update(node)
            .where(node.c.id == entity)
            .values(project_id=destination, parent_id=destination, modified_on=builder.now + dt.timedelta(minutes=1))
        )

    entities, _ = _refresh(settings)

    assert entities.rows_upserted == 2
    assert _entities(settings) == {(entity, 1, destination, handle), (entity, 2, destination, handle)}


def test_new_version_is_replicated(settings, builder):
    project = builder.project()
    entity = builder.file_entity(project, builder.handle())
    _refresh(settings)
    later = builder.now + dt.timedelta(minutes=2)
    builder.now = later
    new_handle = builder.handle()
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(
            node_revision.insert().values(owner_node_id=entity, number=2, file_handle_id=new_handle, modified_on=later)
        )

    entities, handles = _refresh(settings)

    assert (entities.rows_upserted, handles.rows_upserted) == (1, 1)
    assert (entity, 2, project, new_handle) in _entities(settings)
    assert new_handle in _handles(settings)


def test_watermark_is_the_latest_repository_timestamp_not_the_clock(settings, builder):
    builder.now = dt.datetime(2024, 3, 1, 12, 0, 0)
    builder.file_entity(builder.project(), builder.handle())

    entities, handles = _refresh(settings)

    assert entities.high_water == handles.high_water == dt.datetime(2024, 3, 1, 12, 0, 0)
    with engine_for(settings.replica_url).connect() as conn:
        stored = dict(
            conn.execute(select(replication_watermark.c.table_name, replication_watermark.c.high_water)).all()
        )
    assert stored == {"entity_replication": builder.now, "file_replication": builder.now}
    _, again = _refresh(settings)
    assert again.since == builder.now - OVERLAP


def test_late_commit_inside_the_overlap_is_caught_older_ones_need_a_full_refresh(settings, builder):
    project = builder.project()
    builder.file_entity(project, builder.handle())
    _refresh(settings)
    # Committed after the refresh, but dated before its watermark (a long transaction).
    late = builder.handle(updated_on=builder.now - OVERLAP / 2)
    too_late = builder.handle(updated_on=builder.now - 2 * OVERLAP)

    _refresh(settings)
    assert late in _handles(settings) and too_late not in _handles(settings)

    _, handles = _refresh(settings, full_refresh=True)
    assert too_late in _handles(settings)
    assert handles.full_refresh and handles.total_rows == 3


def test_full_refresh_drops_rows_deleted_from_the_repository(settings, builder):
    project = builder.project()
    kept, deleted = builder.handle(), builder.handle()
    entity = builder.file_entity(project, kept, deleted)
    _refresh(settings)
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(delete(node_revision).where(node_revision.c.number == 2))
        conn.execute(delete(files).where(files.c.id == deleted))

    _refresh(settings)
    assert (entity, 2, project, deleted) in _entities(settings)

    entities, handles = _refresh(settings, full_refresh=True)
    assert _entities(settings) == {(entity, 1, project, kept)}
    assert set(_handles(settings)) == {kept}
    assert (entities.total_rows, handles.total_rows) == (1, 1)


def test_replica_in_its_own_database(settings, builder, tmp_path):
    replica_url = f"sqlite:///{tmp_path / 'replica-only.db'}"
    upgrade("replica", replica_url)
    project = builder.project()
    handle = builder.handle()
    entity = builder.file_entity(project, handle)
    try:
        separate = settings.with_changes(replica_url=replica_url)
        entities, handles = _refresh(separate)
        assert _entities(separate) == {(entity, 1, project, handle)}
        assert (entities.total_rows, handles.total_rows) == (1, 1)
        assert _refresh(separate)[1].rows_upserted == 0
    finally:
        dispose_engine(replica_url)


def test_concurrent_refreshes_both_succeed_and_agree(settings, builder):
    project = builder.project()
    for _ in range(5):
        builder.file_entity(project, builder.handle(), builder.handle())
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            _refresh(settings)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(_entities(settings)) == 10 and len(_handles(settings)) == 10


class Statistics(NamedTuple):
    # PostgreSQL's count and time of manual ANALYZEs of the table (None on SQLite and MySQL, which
    # keep none).
    analyze_count: int | None
    last_analyze: dt.datetime | None
    # The row count the planner's statistics describe: reltuples, sqlite_stat1's first figure, or
    # InnoDB's n_rows.
    rows: int | None


def _statistics(settings: Settings, table: str) -> Statistics:
    # A new transaction each time: PostgreSQL caches the statistics views for a transaction.
    with engine_for(settings.replica_url).connect() as conn:
        if conn.dialect.name == "postgresql":
            count, last, rows = conn.execute(
                text(
                    "SELECT s.analyze_count, s.last_analyze, c.reltuples FROM pg_stat_user_tables s"
                    " JOIN pg_class c ON c.oid = s.relid WHERE s.relname = :table"
                ),
                {"table": table},
            ).one()
            # reltuples is -1 until the table is first analyzed.
            return Statistics(count, last, None if rows < 0 else int(rows))
        if conn.dialect.name in ("mysql", "mariadb"):
            # InnoDB's persistent statistics: rewritten by ANALYZE TABLE (or its own recalculation).
            found = conn.execute(
                text(
                    "SELECT n_rows FROM mysql.innodb_table_stats"
                    " WHERE database_name = DATABASE() AND table_name = :table"
                ),
                {"table": table},
            ).scalar()
            return Statistics(None, None, found)
        stats = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = :table"), {"table": table}).scalars()
        counts = {int(stat.split()[0]) for stat in stats}
        assert len(counts) <= 1, counts
        return Statistics(None, None, counts.pop() if counts else None)


def test_the_analyze_rule_is_a_tenth_of_the_table_or_a_fixed_number_of_rows():
    assert should_analyze(0, 0, full_refresh=True)
    assert not should_analyze(0, 0, full_refresh=False)
    assert not should_analyze(10, 100, full_refresh=False)
    assert should_analyze(11, 100, full_refresh=False)
    assert not should_analyze(ANALYZE_ROWS - 1, 1000 * ANALYZE_ROWS, full_refresh=False)
    assert should_analyze(ANALYZE_ROWS, 1000 * ANALYZE_ROWS, full_refresh=False)


def test_statistics_are_refreshed_after_an_incremental_refresh_that_changes_many_rows(settings, builder):
    builder.file_entity(builder.project(), *(builder.handle() for _ in range(20)))
    entities, handles = _refresh(settings)
    assert entities.analyzed and handles.analyzed
    loaded = _statistics(settings, "file_replication")
    assert loaded.rows == 20

    # One new handle in 21 rows: under a tenth, the statistics are left as they are.
    builder.handle()
    entities, handles = _refresh(settings)
    assert handles.rows_upserted == 1
    assert not handles.analyzed and not entities.analyzed
    assert _statistics(settings, "file_replication") == loaded

    # Ten new handles in 31 rows: a third of the table.
    for _ in range(10):
        builder.handle()
    entities, handles = _refresh(settings)
    assert handles.rows_upserted == 10 and handles.total_rows == 31
    assert handles.analyzed and not entities.analyzed
    refreshed = _statistics(settings, "file_replication")
    assert refreshed.rows == 31
    if loaded.analyze_count is not None:
        assert refreshed.analyze_count == loaded.analyze_count + 1
        assert refreshed.last_analyze is not None and loaded.last_analyze is not None
        assert refreshed.last_analyze > loaded.last_analyze
    # The entity table, unchanged, kept the statistics of its load.
    assert _statistics(settings, "entity_replication").rows == 20
