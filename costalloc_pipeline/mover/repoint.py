"""Step 4: repoint handles to the target bucket, batched, each conditional on its etag (I4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Connection,
    FromClause,
    String,
    bindparam,
    column,
    func,
    literal,
    select,
    union_all,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY

from costalloc_pipeline.db import utcnow
from costalloc_pipeline.placement.rule import Target
from costalloc_pipeline.schema.ddl import is_mysql
from costalloc_pipeline.schema.repository import files

# Three bound parameters a row: well under SQLite's and PostgreSQL's limits.
_BATCH = 1000


@dataclass(frozen=True)
class Repoint:
    handle_id: int
    etag_before: str
    etag_after: str


_CHANGE_COLUMNS = (column("id", BigInteger), column("etag_before", String), column("etag_after", String))


def _changes(conn: Connection, batch: Sequence[Repoint]) -> FromClause:
    """The batch as a (id, etag_before, etag_after) relation to join with files."""
    if conn.dialect.name == "postgresql":
        # Three array parameters whatever the batch size, so the statement is compiled once and then
        # cached. A VALUES list has three parameters a row, and compiling it again for every batch
        # took about two thirds of the time of a 100,000-handle repoint (see BENCHMARKS.md).
        return (
            func.unnest(
                bindparam("ids", [m.handle_id for m in batch], type_=ARRAY(BigInteger)),
                bindparam("etags_before", [m.etag_before for m in batch], type_=ARRAY(String)),
                bindparam("etags_after", [m.etag_after for m in batch], type_=ARRAY(String)),
            )
            .table_valued(*_CHANGE_COLUMNS)
            .render_derived(name="changes")
        )
    if is_mysql(conn.dialect):
        # MySQL takes neither a VALUES list in a WITH before an UPDATE nor a table function: a
        # derived table of one SELECT a row, joined by the multiple-table UPDATE.
        rows = [
            select(
                literal(m.handle_id, BigInteger).label("id"),
                literal(m.etag_before, String).label("etag_before"),
                literal(m.etag_after, String).label("etag_after"),
            )
            for m in batch
        ]
        return union_all(*rows).subquery("changes")
    return (
        values(*_CHANGE_COLUMNS, name="changes")
        .data([(m.handle_id, m.etag_before, m.etag_after) for m in batch])
        .cte("changes")
    )


def repoint(conn: Connection, moves: Sequence[Repoint], target: Target) -> set[int]:
    """Return the ids repointed; a handle whose etag changed meanwhile is left alone."""
    done: set[int] = set()
    now = utcnow()
    for start in range(0, len(moves), _BATCH):
        batch = moves[start : start + _BATCH]
        changes = _changes(conn, batch)
        statement = (
            update(files)
            .where(files.c.id == changes.c.id, files.c.etag == changes.c.etag_before)
            .values(
                etag=changes.c.etag_after,
                bucket_name=target.bucket,
                storage_location_id=target.storage_location_id,
                updated_on=now,
            )
        )
        if conn.dialect.update_returning:
            done.update(conn.execute(statement.returning(files.c.id)).scalars())
        else:
            conn.execute(statement)
            done.update(_repointed(conn, batch))
    return done


def _repointed(conn: Connection, batch: Sequence[Repoint]) -> set[int]:
    """The handles of the batch the UPDATE just changed, where it cannot say (MySQL has no UPDATE
    ... RETURNING). Each etag_after is a new UUID that only this repoint writes, so a handle that
    holds its own is one it repointed; the UPDATE's row locks keep it so until the commit."""
    after = {m.handle_id: m.etag_after for m in batch}
    found = conn.execute(select(files.c.id, files.c.etag).where(files.c.id.in_(list(after))))
    return {handle_id for handle_id, etag in found if after[handle_id] == etag}
