"""Copies the repository's file entities and file handles into the replica tables.

Incremental by the repository's modification clocks: each refresh reads the rows changed since the
replica's watermark minus an overlap, and upserts them in chunks. The repository and the replica may
be different databases, so rows travel through this process; nothing joins across databases.
Rows deleted from the repository are only dropped from the replica by a full refresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Insert,
    Select,
    Table,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite

from costalloc_pipeline.db import utcnow
from costalloc_pipeline.errors import BadRequest, Unavailable
from costalloc_pipeline.replica.statistics import analyze, should_analyze
from costalloc_pipeline.schema.ddl import is_mysql
from costalloc_pipeline.schema.replica import (
    entity_replication,
    file_replication,
    replication_watermark,
)
from costalloc_pipeline.schema.repository import NodeType, files, node, node_revision
from costalloc_pipeline.schema.temporary import create_temporary, drop_temporary, temporary_table

if TYPE_CHECKING:
    import psycopg

# A transaction may commit after one that started later, with an older timestamp: re-reading this
# much before the watermark catches such late commits. Re-read rows that did not change are not
# rewritten (the upsert compares them first), so the overlap costs one small index range scan.
OVERLAP = dt.timedelta(minutes=5)
# Rows per read and per upsert statement: keeps memory flat whatever the table size.
CHUNK_ROWS = 10_000
# How long a refresh waits for another refresh of the same table on MySQL (a full refresh of
# millions of rows takes minutes).
LOCK_WAIT_SECONDS = 3600

# A row of a `changed_since` query: a replica row, then its timestamps (their number varies by table).
ChangedRow = tuple[Any, ...]
# The INSERTs that can take ON CONFLICT DO UPDATE.
UpsertInsert = postgresql.Insert | sqlite.Insert


@dataclass(frozen=True)
class ReplicationResult:
    """What one refresh of a replica table did, for the materialization's metadata."""

    table: str
    full_refresh: bool
    # None on a full refresh; else the repository clock value the changed rows were read from.
    since: dt.datetime | None
    rows_read: int
    # Rows inserted or changed in the replica (re-read rows equal to the replica's are not counted).
    rows_upserted: int
    total_rows: int
    # Sum of content_size for file handles; None for tables without sizes.
    total_bytes: int | None
    # Largest repository timestamp seen so far: where the next incremental refresh starts.
    high_water: dt.datetime | None
    # Whether the table's planner statistics were refreshed after it (rule in replica/statistics.py).
    analyzed: bool


@dataclass(frozen=True)
class _Replication:
    target: Table
    # Columns compared before an update; equal rows are left alone.
    compared: Sequence[str]
    # Queries for the repository rows changed since a moment (all rows for None): the replica's
    # columns in order, then the repository timestamps that date each row.
    changed_since: Callable[[dt.datetime | None], list[Select[ChangedRow]]]
    sized: bool


def _entity_rows(since: dt.datetime | None) -> list[Select[ChangedRow]]:
    # One row per version of a FILE node; the project comes from the node, so a node that moves to
    # another project changes node.modified_on and all its versions are read again.
    base = (
        select(
            node_revision.c.owner_node_id.label("entity_id"),
            node_revision.c.number.label("version"),
            node.c.project_id,
            node_revision.c.file_handle_id,
            node.c.modified_on.label("node_modified_on"),
            node_revision.c.modified_on.label("revision_modified_on"),
        )
        .select_from(node_revision.join(node, node.c.id == node_revision.c.owner_node_id))
        .where(node.c.node_type == NodeType.FILE.value, node.c.project_id.is_not(None))
    )
    if since is None:
        return [base]
    # Two queries, each an index range scan, rather than one OR that no index serves.
    return [base.where(node_revision.c.modified_on >= since), base.where(node.c.modified_on >= since)]


def _file_rows(since: dt.datetime | None) -> list[Select[ChangedRow]]:
    columns = [files.c[column.name] for column in file_replication.columns]
    query = select(*columns, files.c.updated_on)
    if since is not None:
        query = query.where(files.c.updated_on >= since)
    return [query]


ENTITY_REPLICATION = _Replication(
    target=entity_replication,
    compared=("project_id", "file_handle_id"),
    changed_since=_entity_rows,
    sized=False,
)
# Every change of a handle changes its etag: comparing it is enough.
FILE_REPLICATION = _Replication(target=file_replication, compared=("etag",), changed_since=_file_rows, sized=True)


def _staging_table(target: Table) -> Table:
    # Rows are first bulk-loaded here, then merged with one INSERT ... SELECT ... ON CONFLICT per chunk:
    # far faster than a row-by-row upsert, and the merge's row count is exactly what changed. On
    # MySQL it is made LIKE the target, whose exact collation the rows must compare in.
    return temporary_table(f"{target.name}_staging", *(Column(column.name, column.type) for column in target.columns))


def _upsert_insert(conn: Connection, table: Table) -> UpsertInsert:
    """An INSERT that can take ON CONFLICT DO UPDATE, in the replica's dialect."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise BadRequest(f"the replica database must be PostgreSQL, MySQL or SQLite, not {dialect}")


def _changed_in_staging(replication: _Replication, staging: Table) -> Select[tuple[int]]:
    """How many staged rows are new or differ from the replica's: what the merge will change."""
    table = replication.target
    keys = [column.name for column in table.primary_key.columns]
    joined = staging.outerjoin(table, and_(*(table.c[key] == staging.c[key] for key in keys)))
    return (
        select(func.count())
        .select_from(joined)
        .where(
            or_(
                table.c[keys[0]].is_(None),
                *(table.c[name].is_distinct_from(staging.c[name]) for name in replication.compared),
            )
        )
    )


def _merge(conn: Connection, replication: _Replication, staging: Table, full: bool) -> Callable[[], int]:
    """The merge of the staged chunk into the replica table; it returns the rows it changed.
    `full`: the table was emptied in this transaction, so every staged row is new."""
    table = replication.target
    keys = [column.name for column in table.primary_key.columns]
    names = [column.name for column in table.columns]
    if is_mysql(conn.dialect):
        # ON DUPLICATE KEY UPDATE has no WHERE, and its row count mixes inserted (1), changed (2)
        # and unchanged (1) rows: the rows it will change are counted first, in the same
        # transaction. Writing an equal value again changes nothing in MySQL.
        insert = mysql.insert(table).from_select(names, select(*staging.columns))
        upsert = insert.on_duplicate_key_update({name: insert.inserted[name] for name in names if name not in keys})
        count = _changed_in_staging(replication, staging)

        def merge_mysql() -> int:
            if full:
                # Into an emptied table every row is an insert, counted once by the server: no
                # count's join with the growing table.
                return int(conn.execute(upsert).rowcount)
            changed = int(conn.execute(count).scalar_one())
            conn.execute(upsert)
            return changed

        return merge_mysql
    statement = _merge_statement(conn, replication, staging)
    return lambda: conn.execute(statement).rowcount


def _merge_statement(conn: Connection, replication: _Replication, staging: Table) -> Insert:
    table = replication.target
    keys = [column.name for column in table.primary_key.columns]
    names = [column.name for column in table.columns]
    # SQLite needs a WHERE on the SELECT to tell the ON CONFLICT clause from a join's ON.
    statement = _upsert_insert(conn, table).from_select(names, select(*staging.columns).where(true()))
    # SQLAlchemy reports an INSERT's row count only when asked to keep it.
    return statement.execution_options(preserve_rowcount=True).on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in names if name not in keys},
        # Re-read rows equal to the replica's are left alone and not counted.
        where=or_(*(table.c[name].is_distinct_from(statement.excluded[name]) for name in replication.compared)),
    )


def _stage(conn: Connection, staging: Table, rows: Sequence[Sequence[Any]]) -> None:
    names = [column.name for column in staging.columns]
    if conn.dialect.driver == "psycopg":
        # COPY, through the transaction's own psycopg connection (SQLAlchemy types it for any driver).
        driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {staging.name} ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    else:
        conn.execute(staging.insert(), [dict(zip(names, row, strict=False)) for row in rows])


def _chunks(conn: Connection, query: Select[ChangedRow]) -> Iterator[Sequence[Any]]:
    # A server-side cursor on PostgreSQL; on SQLite the rows are fetched a chunk at a time.
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
    yield from result.partitions()


def _watermark(conn: Connection, table_name: str) -> dt.datetime | None:
    return conn.execute(
        select(replication_watermark.c.high_water).where(replication_watermark.c.table_name == table_name)
    ).scalar()


def _save_watermark(conn: Connection, table_name: str, high_water: dt.datetime | None) -> None:
    # Replaced rather than upserted: the transaction is the table's only refresh (see below), and
    # the statements are the same on every database.
    conn.execute(delete(replication_watermark).where(replication_watermark.c.table_name == table_name))
    if high_water is not None:
        # An empty repository has no watermark: the next refresh is full again, which is free.
        conn.execute(
            replication_watermark.insert().values(table_name=table_name, high_water=high_water, refreshed_on=utcnow())
        )


@contextmanager
def _serialized_transaction(replica: Engine, table: Table) -> Iterator[Connection]:
    """One replica transaction that no other refresh of the table runs beside.

    Runs of several projects may refresh the replica at once: a second refresh waits, then reads
    the first one's watermark and finds (almost) nothing to do. SQLite serialises writers by itself.
    """
    with replica.connect() as conn:
        if not is_mysql(conn.dialect):
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # This lock mode conflicts with itself but not with readers.
                    conn.execute(text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))
                yield conn
            return
        # LOCK TABLES would commit the transaction and lock readers out: a named lock instead. Its
        # name is the database's and the table's (one server holds many databases), hashed to fit
        # 64 characters. It is let go just before the commit, so that no connection holds it
        # between transactions; a refresh that takes it in that instant reads the old watermark
        # and repeats some of the work, its upserts waiting for this commit.
        name = text("SHA1(CONCAT(DATABASE(), '.', :table))").bindparams(table=table.name)
        with conn.begin():
            acquired = conn.execute(select(func.get_lock(name, LOCK_WAIT_SECONDS))).scalar()
            if acquired != 1:
                raise Unavailable(f"another refresh of {table.name} held it for {LOCK_WAIT_SECONDS} s")
            try:
                yield conn
            finally:
                conn.execute(select(func.release_lock(name)))


def _empty(conn: Connection, table: Table) -> None:
    if conn.dialect.name == "postgresql":
        # TRUNCATE frees the space at once and is transactional in PostgreSQL.
        conn.execute(text(f"TRUNCATE TABLE {table.name}"))
    else:
        conn.execute(delete(table))


def _totals(conn: Connection, replication: _Replication) -> tuple[int, int | None]:
    table = replication.target
    if replication.sized:
        rows, size = conn.execute(select(func.count(), func.coalesce(func.sum(table.c.content_size), 0))).one()
        return int(rows), int(size)
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one()), None


def _refresh(
    repository: Engine, replica: Engine, replication: _Replication, full_refresh: bool = False
) -> ReplicationResult:
    """Brings one replica table up to date with the repository, in one replica transaction."""
    table = replication.target
    width = len(table.columns)
    staging = _staging_table(table)
    with _serialized_transaction(replica, table) as write, repository.connect() as read:
        previous = _watermark(write, table.name)
        since = None if full_refresh or previous is None else previous - OVERLAP
        full = since is None
        if full:
            _empty(write, table)
        create_temporary(write, staging, like=table)
        merge = _merge(write, replication, staging, full)
        high_water = None if full else previous
        rows_read = rows_upserted = 0
        for query in replication.changed_since(since):
            for chunk in _chunks(read, query):
                rows_read += len(chunk)
                for row in chunk:
                    for clock in row[width:]:
                        if high_water is None or clock > high_water:
                            high_water = clock
                _stage(write, staging, [row[:width] for row in chunk])
                rows_upserted += merge()
                # TRUNCATE on PostgreSQL: deleted rows of a temporary table are never vacuumed, and
                # every merge would scan them again.
                _empty(write, staging)
        drop_temporary(write, staging)
        _save_watermark(write, table.name, high_water)
        total_rows, total_bytes = _totals(write, replication)
    analyzed = should_analyze(rows_upserted, total_rows, full) and analyze(replica, table)
    return ReplicationResult(
        table=table.name,
        full_refresh=full,
        since=since,
        rows_read=rows_read,
        rows_upserted=rows_upserted,
        total_rows=total_rows,
        total_bytes=total_bytes,
        high_water=high_water,
        analyzed=analyzed,
    )


def refresh_entity_replication(repository: Engine, replica: Engine, full_refresh: bool = False) -> ReplicationResult:
    return _refresh(repository, replica, ENTITY_REPLICATION, full_refresh)


def refresh_file_replication(repository: Engine, replica: Engine, full_refresh: bool = False) -> ReplicationResult:
    return _refresh(repository, replica, FILE_REPLICATION, full_refresh)
