"""Step 4: repoint handles to the target bucket, batched, each conditional on its etag (I4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Connection, String, select, update

from costalloc_pipeline.db import utcnow
from costalloc_pipeline.mover.relation import batches, rows_relation
from costalloc_pipeline.placement.rule import Target
from costalloc_pipeline.schema.repository import files


@dataclass(frozen=True)
class Repoint:
    handle_id: int
    etag_before: str
    etag_after: str


_CHANGE_COLUMNS = (("id", BigInteger()), ("etag_before", String()), ("etag_after", String()))


def repoint(conn: Connection, moves: Sequence[Repoint], target: Target) -> set[int]:
    """Return the ids repointed; a handle whose etag changed meanwhile is left alone."""
    done: set[int] = set()
    now = utcnow()
    for batch in batches(moves):
        changes = rows_relation(
            conn, "changes", _CHANGE_COLUMNS, [(m.handle_id, m.etag_before, m.etag_after) for m in batch]
        )
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
