"""What planning needs of the replica beyond its rows: the sharing indexes (and the repository's
index of handles by preview), and on PostgreSQL a visibility map kept up to date, so that those
indexes are read without visiting the tables."""

from __future__ import annotations

import pytest
from helpers.backends import postgresql_only
from helpers.repository_builder import RepositoryBuilder, bootstrapped_builder
from sqlalchemy import inspect, text, update

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.replica.refresh import refresh_entity_replication, refresh_file_replication
from costalloc_pipeline.schema.replica import entity_replication, file_replication
from costalloc_pipeline.schema.repository import files


@pytest.fixture
def builder(settings: Settings) -> RepositoryBuilder:
    return bootstrapped_builder(settings)


@pytest.mark.parametrize(
    ("database", "tables"),
    [("replica", (entity_replication, file_replication)), ("repository", (files,))],
)
def test_the_migrated_databases_have_the_indexes_their_tables_declare(settings, database, tables):
    found = inspect(engine_for(getattr(settings, f"{database}_url")))

    for table in tables:
        declared = {index.name: [column.name for column in index.columns] for index in table.indexes}
        migrated = {index["name"]: index["column_names"] for index in found.get_indexes(table.name)}
        assert migrated == declared
    assert "ix_entity_replication_handle" in {index.name for index in entity_replication.indexes}
    assert "ix_file_replication_preview" in {index.name for index in file_replication.indexes}
    # The live repository's sharing through a preview (the mover, the check) looks handles up by preview.
    assert "ix_files_preview_id" in {index.name for index in files.indexes}


def _visibility(settings: Settings, table: str) -> tuple[int, int]:
    """Pages of the table, and those its visibility map marks all-visible."""
    with engine_for(settings.replica_url).connect() as conn:
        pages, visible = conn.execute(
            text("SELECT relpages, relallvisible FROM pg_class WHERE relname = :table"), {"table": table}
        ).one()
    return int(pages), int(visible)


@postgresql_only
def test_a_refresh_that_refreshes_statistics_also_vacuums(settings, builder):
    # Enough rows for several pages.
    handles = [builder.handle(key=f"k/{n:04d}" + "x" * 200) for n in range(300)]
    builder.file_entity(builder.project(), *handles)
    repository, replica = engine_for(settings.repository_url), engine_for(settings.replica_url)
    refresh_entity_replication(repository, replica)
    assert refresh_file_replication(repository, replica).analyzed
    pages, visible = _visibility(settings, "file_replication")
    assert pages > 1 and visible == pages

    # A third of the handles change: the upsert leaves dead versions on pages no longer all-visible,
    # until the vacuum that comes with the statistics.
    with repository.begin() as conn:
        conn.execute(update(files).where(files.c.id.in_(handles[:100])).values(etag="changed", updated_on=builder.now))
    result = refresh_file_replication(repository, replica)

    assert result.rows_upserted == 100 and result.analyzed
    pages, visible = _visibility(settings, "file_replication")
    assert visible == pages
