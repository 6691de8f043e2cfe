"""The buckets of retired cost allocations, as the repository remembers them.

A retired cost allocation's row is gone, so its bucket is no longer repository-managed storage;
but the ledger still names it (the moves into and out of it) and may name archives in it. Its
storage location is kept and marked, so that the audit knows those rows were written while the
bucket was managed (I5), and which archives were deleted on purpose (--expire-archives, I3).
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from costalloc_pipeline.schema.repository import storage_location

RETIRED = "retired cost allocation "
ARCHIVES_EXPIRED = "; archives expired on retirement"


def mark_retired(conn: Connection, location_id: int, name: str, archives_expired: bool) -> None:
    description = RETIRED + name + (ARCHIVES_EXPIRED if archives_expired else "")
    conn.execute(update(storage_location).where(storage_location.c.id == location_id).values(description=description))


def retired_buckets(conn: Connection) -> dict[str, bool]:
    """Each retired cost allocation's bucket: True when its archives were expired on retirement."""
    rows = conn.execute(
        select(storage_location.c.bucket, storage_location.c.description).where(
            storage_location.c.description.startswith(RETIRED)
        )
    )
    return {row.bucket: row.description.endswith(ARCHIVES_EXPIRED) for row in rows}
