"""Step 4: repoint handles to the target bucket, batched, each conditional on its etag (I4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Connection, String, column, update, values

from costalloc_pipeline.db import utcnow
from costalloc_pipeline.mover.handles import Target
from costalloc_pipeline.schema.repository import files

# Three bound parameters a row: well under SQLite's and PostgreSQL's limits.
_BATCH = 1000


@dataclass(frozen=True)
class Repoint:
    handle_id: int
    etag_before: str
    etag_after: str


def repoint(conn: Connection, moves: Sequence[Repoint], target: Target) -> set[int]:
    """Return the ids repointed; a handle whose etag changed meanwhile is left alone."""
    done: set[int] = set()
    now = utcnow()
    for start in range(0, len(moves), _BATCH):
        batch = moves[start : start + _BATCH]
        changes = (
            values(
                column("id", BigInteger), column("etag_before", String), column("etag_after", String), name="changes"
            )
            .data([(m.handle_id, m.etag_before, m.etag_after) for m in batch])
            .cte("changes")
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
            .returning(files.c.id)
        )
        done.update(conn.execute(statement).scalars())
    return done
