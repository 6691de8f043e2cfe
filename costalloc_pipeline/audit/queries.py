"""The audit's database side: which handles, archives and moves to look at, read in batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, Select, and_, func, select, tuple_, union

from costalloc_pipeline.db import utcnow
from costalloc_pipeline.placement.rule import live_condition
from costalloc_pipeline.schema.ddl import is_mysql
from costalloc_pipeline.schema.repository import MoveState, files, move_ledger

# A handle's id, bucket, key, size and MD5 (_HANDLE_COLUMNS); an archive's identity, a handle id and
# when it was archived.
_HandleRow = tuple[int, str, str, int | None, str | None]
_ArchiveRow = tuple[str, str, str | None, str | None, int, dt.datetime]
_Columns = TypeVar("_Columns", bound=tuple[Any, ...])


def _managed(buckets: Sequence[str]) -> tuple[ColumnElement[bool], ...]:
    return (live_condition(files, buckets),)


_HANDLE_COLUMNS = (files.c.id, files.c.bucket_name, files.c.key, files.c.content_size, files.c.content_md5)
_ARCHIVED = and_(move_ledger.c.state == MoveState.DONE.value, move_ledger.c.archive_key.is_not(None))


def _handles_query(buckets: Sequence[str], sample: int | None) -> Select[_HandleRow]:
    if sample is None:
        return select(*_HANDLE_COLUMNS).where(*_managed(buckets)).order_by(files.c.id)
    sampled = select(files.c.id).where(*_managed(buckets)).order_by(func.random()).limit(sample).subquery()
    # Whatever the sample, every handle whose object the ledger archived is looked at (I2).
    archived_referenced = select(files.c.id).where(
        *_managed(buckets),
        tuple_(files.c.bucket_name, files.c.key).in_(
            select(move_ledger.c.archive_bucket, move_ledger.c.archive_key).where(_ARCHIVED)
        ),
    )
    chosen = union(select(sampled.c.id), archived_referenced).subquery()
    return select(*_HANDLE_COLUMNS).where(files.c.id.in_(select(chosen.c.id))).order_by(files.c.id)


# What finds an archive again (archives/locate.py): its bucket and key, and for an archive by
# DeleteObject its version.
ARCHIVE_IDENTITY = (
    move_ledger.c.archive_bucket,
    move_ledger.c.archive_key,
    move_ledger.c.archive_method,
    move_ledger.c.archive_version_id,
)


def _archives_query(retention_days: int | None, sample: int | None) -> Select[_ArchiveRow]:
    query = (
        select(*ARCHIVE_IDENTITY, func.min(move_ledger.c.file_handle_id), func.max(move_ledger.c.archived_on))
        .where(_ARCHIVED)
        .group_by(*ARCHIVE_IDENTITY)
    )
    if retention_days is not None:
        # Older archives have legitimately expired.
        query = query.where(move_ledger.c.archived_on > utcnow() - dt.timedelta(days=retention_days))
    return query.order_by(func.random()).limit(sample) if sample is not None else query


def archives_overdue_before(now: dt.datetime, archive_grace_seconds: int) -> dt.datetime:
    """Repoints at or before this moment should have had their source archived by now. With a grace
    period the archive is made by the project's next run (the rescan is daily): a day more."""
    slack = dt.timedelta(days=1) if archive_grace_seconds else dt.timedelta(0)
    return now - dt.timedelta(seconds=archive_grace_seconds) - slack


def _moved_etags(conn: Connection, handle_ids: Sequence[int]) -> dict[int, str]:
    """ETag of the verified copy each handle was repointed to, where the handle is unchanged since."""
    if not handle_ids:
        return {}
    rows = conn.execute(
        select(move_ledger.c.file_handle_id, move_ledger.c.target_object_etag)
        .join(files, files.c.id == move_ledger.c.file_handle_id)
        .where(
            move_ledger.c.file_handle_id.in_(list(handle_ids)),
            move_ledger.c.state.in_([MoveState.REPOINTED.value, MoveState.DONE.value]),
            move_ledger.c.etag_after == files.c.etag,
            move_ledger.c.target_bucket == files.c.bucket_name,
            move_ledger.c.target_object_etag.is_not(None),
        )
    )
    # .all(): dict() would take a Result, which has keys(), for a mapping. .tuples() types the rows
    # as the (id, etag) pairs they are.
    return dict(rows.tuples().all())


def _batches(conn: Connection, query: Select[_Columns], batch: int) -> Iterator[list[Row[_Columns]]]:
    if is_mysql(conn.dialect):
        # The audit queries the ledger between batches, and a statement on the connection of a
        # PyMySQL stream ends the stream: the rows not yet read are dropped, with only a warning.
        # The stream gets a connection of its own (READ COMMITTED: each statement sees what was
        # committed when it began, on one connection or two).
        with conn.engine.connect() as reader:
            yield from _stream(reader, query, batch)
        return
    yield from _stream(conn, query, batch)


def _stream(conn: Connection, query: Select[_Columns], batch: int) -> Iterator[list[Row[_Columns]]]:
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
    for rows in result.partitions():
        yield list(rows)
