"""What only MySQL and MariaDB need: migrations that can be re-run (their DDL is not transactional),
keys compared exactly in utf8mb4, microsecond timestamps, and the forms of INSERT and UPDATE that
MySQL 8 takes without RETURNING. Every other database test runs on MariaDB as well."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers.backends import MARIADB_ENABLED, mariadb_only
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from costalloc_pipeline.db import dispose_engine, engine_for, make_engine, new_etag, utcnow
from costalloc_pipeline.mover import ledger
from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.placement.rule import Target
from costalloc_pipeline.schema.migrate import upgrade_all
from costalloc_pipeline.schema.repository import cost_allocation_project, files, move_ledger


def _schema(url: str) -> dict[str, tuple[set[str], set[str]]]:
    """Every table's columns and index names."""
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {
            table: (
                {column["name"] for column in found.get_columns(table)},
                {str(index["name"]) for index in found.get_indexes(table)},
            )
            for table in found.get_table_names()
        }
    finally:
        engine.dispose()


@pytest.mark.skipif(not MARIADB_ENABLED, reason="COSTALLOC_TEST_MARIADB=off")
def test_a_migration_that_stopped_halfway_finishes_when_run_again(empty_mariadb_url: str) -> None:
    upgrade_all(empty_mariadb_url, empty_mariadb_url)
    complete = _schema(empty_mariadb_url)
    dispose_engine(empty_mariadb_url)
    # What a failure halfway leaves on MySQL: some tables, one without its indexes, another without a
    # later column, and no revision stamped (each DDL statement committed on its own).
    with create_engine(empty_mariadb_url).begin() as conn:
        for table in ("alembic_version_repository", "alembic_version_replica", "cost_allocation_project"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("DROP TABLE team_member"))
        conn.execute(text("DROP INDEX ix_files_updated_on ON files"))
        conn.execute(text("DROP INDEX ix_files_preview_id ON files"))
        conn.execute(text("DROP INDEX ix_entity_replication_project ON entity_replication"))
        conn.execute(text("ALTER TABLE object_claim DROP COLUMN held_until"))
        conn.execute(text("ALTER TABLE move_ledger DROP COLUMN repointed_on"))

    upgrade_all(empty_mariadb_url, empty_mariadb_url)

    assert _schema(empty_mariadb_url) == complete
    # And a third run has nothing left to do.
    upgrade_all(empty_mariadb_url, empty_mariadb_url)
    assert _schema(empty_mariadb_url) == complete


@mariadb_only
def test_a_bare_mysql_url_gets_the_declared_driver_and_utf8mb4(database_url: str) -> None:
    bare = make_url(database_url).set(drivername="mysql").render_as_string(hide_password=False)
    engine = make_engine(bare)
    try:
        assert engine.dialect.driver == "pymysql"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT @@character_set_connection")).scalar() == "utf8mb4"
            assert conn.get_isolation_level() == "READ COMMITTED"
    finally:
        engine.dispose()


def _file(handle_id: int, bucket: str, key: str, created_on: dt.datetime) -> dict[str, object]:
    return {
        "id": handle_id,
        "etag": new_etag(),
        "created_on": created_on,
        "created_by": 1,
        "updated_on": created_on,
        "metadata_type": "S3",
        "bucket_name": bucket,
        "name": key.rsplit("/", 1)[-1],
        "key": key,
        "storage_location_id": 1,
        "is_preview": False,
        "status": "AVAILABLE",
    }


@mariadb_only
def test_keys_are_stored_in_utf8mb4_and_compared_exactly(database_url: str) -> None:
    # S3 keys are byte strings: case, trailing spaces and characters outside the BMP all matter.
    keys = [
        "data/a.txt",
        "data/A.txt",
        "data/a.txt ",
        "data/\U0001f9ec-genome.bam",
        "data/" + "k" * 690 + "/" + "n" * 4,
    ]
    now = utcnow()
    engine = engine_for(database_url)
    with engine.begin() as conn:
        conn.execute(files.insert(), [_file(i + 1, "bucket", key, now) for i, key in enumerate(keys)])
    with engine.connect() as conn:
        for i, key in enumerate(keys):
            found = conn.execute(select(files.c.id).where(files.c.bucket_name == "bucket", files.c.key == key)).all()
            assert found == [(i + 1,)], key
        assert conn.execute(select(files.c.key).where(files.c.id == 4)).scalar() == keys[3]


@mariadb_only
def test_timestamps_keep_their_microseconds(database_url: str) -> None:
    moment = dt.datetime(2026, 12, 7, 15, 4, 5, 123456)
    engine = engine_for(database_url)
    with engine.begin() as conn:
        conn.execute(files.insert().values(_file(1, "bucket", "k", moment)))
    with engine.connect() as conn:
        assert conn.execute(select(files.c.created_on)).scalar() == moment


@mariadb_only
def test_the_ledger_is_started_row_by_row_where_insert_returning_is_missing(database_url: str) -> None:
    # MySQL 8 has no INSERT ... RETURNING; MariaDB has. This engine of the same database is told so,
    # to run the form MySQL 8 gets, on the real server.
    engine = make_engine(database_url)
    engine.dialect.insert_executemany_returning_sort_by_parameter_order = False
    handles = [Handle(10 + i, new_etag(), "src", f"k{i}", i, None, 1, "AVAILABLE", "S3") for i in range(5)]
    try:
        with engine.begin() as conn:
            started = ledger.start(conn, "run-1", 7, handles, Target("dst", 2))
        with engine.connect() as conn:
            rows = dict(conn.execute(select(move_ledger.c.file_handle_id, move_ledger.c.id)).all())
    finally:
        engine.dispose()
    assert started == rows
    assert sorted(started) == [h.id for h in handles]


def test_every_test_database_keeps_the_schemas_foreign_keys(database_url: str) -> None:
    # The tests' MariaDB databases are copies of a migrated one: the copy must keep the foreign
    # keys (CREATE TABLE ... LIKE would not), whose locks some races rely on.
    engine = engine_for(database_url)
    found = inspect(engine)
    keys = {
        (table, key["referred_table"], tuple(key["constrained_columns"]))
        for table in found.get_table_names()
        for key in found.get_foreign_keys(table)
    }
    assert ("cost_allocation_project", "cost_allocation", ("cost_allocation_id",)) in keys
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            cost_allocation_project.insert().values(
                project_id=1, cost_allocation_id=999, state="ACTIVE", change_number=1, updated_on=utcnow()
            )
        )
