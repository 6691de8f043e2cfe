"""The move ledger: one row per handle move attempt, written before each step takes effect."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from costalloc_pipeline.db import insert_id, utcnow
from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.mover.relation import batches, insert_rows, rows_relation
from costalloc_pipeline.placement.rule import Target
from costalloc_pipeline.schema.repository import MoveState, move_ledger

# Attempts that may have left a copy in the target bucket without repointing the handle.
UNFINISHED = (MoveState.STARTED.value, MoveState.COPIED.value)
# When a row was repointed (rows written before the column existed: their last update).
REPOINTED_ON = func.coalesce(move_ledger.c.repointed_on, move_ledger.c.updated_on)


# What a STARTED row records of its handle; the rest of the row is the run's.
_STARTED_COLUMNS = ("file_handle_id", "source_bucket", "source_key", "content_size", "etag_before")


def start(conn: Connection, run_id: str, project_id: int, handles: Sequence[Handle], target: Target) -> dict[int, int]:
    """Insert STARTED rows; return ledger id by handle id."""
    if not handles:
        return {}
    now = utcnow()
    shared = {
        "run_id": run_id,
        "project_id": project_id,
        "target_bucket": target.bucket,
        "target_storage_location_id": target.storage_location_id,
        "state": MoveState.STARTED.value,
        "started_on": now,
        "updated_on": now,
    }
    rows = [(h.id, h.bucket, h.key, h.size, h.etag) for h in handles]
    if not conn.dialect.insert_returning:
        # MySQL 8 has no INSERT ... RETURNING: a row at a time, each with its own id (a bundle is
        # at most a few hundred rows, next to as many S3 copies).
        return {
            row[0]: insert_id(
                conn, insert(move_ledger).values(**dict(zip(_STARTED_COLUMNS, row, strict=True)), **shared)
            )
            for row in rows
        }
    ids: dict[int, int] = {}
    for batch in batches(rows):
        statement = insert_rows(conn, move_ledger, _STARTED_COLUMNS, batch, shared)
        ids.update(
            (handle_id, ledger_id)
            for ledger_id, handle_id in conn.execute(
                statement.returning(move_ledger.c.id, move_ledger.c.file_handle_id)
            )
        )
    return ids


def moved_by_run(conn: Connection, project_id: int, run_id: str) -> tuple[int, int]:
    """The handles of the project this run has repointed so far, and their recorded bytes."""
    files, size = conn.execute(
        select(func.count(), func.coalesce(func.sum(move_ledger.c.content_size), 0)).where(
            move_ledger.c.project_id == project_id,
            move_ledger.c.run_id == run_id,
            move_ledger.c.state.in_([MoveState.REPOINTED.value, MoveState.DONE.value]),
        )
    ).one()
    return int(files), int(size)


def unfinished_attempts(conn: Connection, handle_ids: Iterable[int], live_runs: Iterable[str]) -> list[int]:
    """Ledger ids of attempts to move these handles left unfinished by runs that are over (crashed)."""
    ids = list(handle_ids)
    runs = sorted(set(live_runs))
    found: list[int] = []
    for start_at in range(0, len(ids), 1000):
        found.extend(
            conn.execute(
                select(move_ledger.c.id).where(
                    move_ledger.c.file_handle_id.in_(ids[start_at : start_at + 1000]),
                    move_ledger.c.state.in_(UNFINISHED),
                    move_ledger.c.run_id.not_in(runs),
                )
            ).scalars()
        )
    return found


def verified_copies(conn: Connection, handles: Sequence[Handle], target_bucket: str) -> dict[int, set[str]]:
    """ETags of copies the ledger verified for each handle *as it is now* (same etag as when the
    attempt started): a copy of bytes the handle has since replaced is never reused."""
    by_id = {h.id: h for h in handles}
    found: dict[int, set[str]] = {h.id: set() for h in handles}
    ids = list(by_id)
    for start_at in range(0, len(ids), 1000):
        rows = conn.execute(
            select(move_ledger.c.file_handle_id, move_ledger.c.etag_before, move_ledger.c.target_object_etag).where(
                move_ledger.c.file_handle_id.in_(ids[start_at : start_at + 1000]),
                move_ledger.c.target_bucket == target_bucket,
                move_ledger.c.target_object_etag.is_not(None),
                # A FAILED row's ETag is of a copy that failed its verification.
                move_ledger.c.state != MoveState.FAILED.value,
            )
        )
        for handle_id, etag_before, object_etag in rows:
            if etag_before == by_id[handle_id].etag:
                found[handle_id].add(object_etag)
    return found


def own_copies(conn: Connection, target_bucket: str, keys: Iterable[str]) -> dict[str, set[str]]:
    """ETags of every copy costalloc made at these keys of the target bucket (finished or not)."""
    wanted = sorted(set(keys))
    found: dict[str, set[str]] = {key: set() for key in wanted}
    for start_at in range(0, len(wanted), 1000):
        rows = conn.execute(
            select(move_ledger.c.source_key, move_ledger.c.target_object_etag).where(
                move_ledger.c.target_bucket == target_bucket,
                move_ledger.c.source_key.in_(wanted[start_at : start_at + 1000]),
                move_ledger.c.target_object_etag.is_not(None),
            )
        )
        for key, etag in rows:
            found[key].add(etag)
    return found


def moving_objects(
    conn: Connection, objects: Iterable[tuple[str, str]], live_runs: Iterable[str]
) -> set[tuple[str, str]]:
    """Objects that an unfinished move of a live run reads (its source) or writes (its target)."""
    runs = sorted(set(live_runs))
    wanted = set(objects)
    if not runs or not wanted:
        return set()
    keys = sorted({key for _, key in wanted})
    found: set[tuple[str, str]] = set()
    for start_at in range(0, len(keys), 500):
        rows = conn.execute(
            select(move_ledger.c.source_bucket, move_ledger.c.target_bucket, move_ledger.c.source_key).where(
                move_ledger.c.source_key.in_(keys[start_at : start_at + 500]),
                move_ledger.c.state.in_(UNFINISHED),
                move_ledger.c.run_id.in_(runs),
            )
        )
        for source_bucket, target_bucket, key in rows:
            found.update({(source_bucket, key), (target_bucket, key)} & wanted)
    return found


def supersede(conn: Connection, ledger_ids: Iterable[int]) -> None:
    ids = list(ledger_ids)
    if ids:
        conn.execute(
            update(move_ledger)
            .where(move_ledger.c.id.in_(ids), move_ledger.c.state.in_(UNFINISHED))
            .values(state=MoveState.SUPERSEDED.value, updated_on=utcnow())
        )


def record(conn: Connection, state: MoveState, changes: dict[int, dict[str, Any]]) -> None:
    """Set `state`, and per-row extra columns, on ledger rows keyed by ledger id: one statement a
    batch of rows (relation.py), not one a row."""
    if not changes:
        return
    names = sorted({name for extra in changes.values() for name in extra})
    columns = [("ledger_id", move_ledger.c.id.type), *((name, move_ledger.c[name].type) for name in names)]
    now = utcnow()
    rows = [(ledger_id, *(extra.get(name) for name in names)) for ledger_id, extra in changes.items()]
    for batch in batches(rows):
        changed = rows_relation(conn, "changed", columns, batch)
        conn.execute(
            update(move_ledger)
            .where(move_ledger.c.id == changed.c.ledger_id)
            .values(state=state.value, updated_on=now, **{name: changed.c[name] for name in names})
        )


def due_archives(
    conn: Connection, project_id: int | None, repointed_before: dt.datetime, live_runs: Iterable[str], own_run: str
) -> list[Any]:
    """REPOINTED rows whose grace period is over, of runs that are over (or of `own_run`): a live
    run's rows are its own to finish."""
    query = select(move_ledger).where(
        move_ledger.c.state == MoveState.REPOINTED.value,
        repointed_before >= REPOINTED_ON,
        or_(move_ledger.c.run_id.not_in(sorted(set(live_runs) - {own_run})), move_ledger.c.run_id == own_run),
    )
    if project_id is not None:
        query = query.where(move_ledger.c.project_id == project_id)
    return list(conn.execute(query.order_by(move_ledger.c.id)))
