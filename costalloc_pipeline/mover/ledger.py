"""The move ledger: one row per handle move attempt, written before each step takes effect."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from costalloc_pipeline.db import utcnow
from costalloc_pipeline.mover.handles import Handle, Target
from costalloc_pipeline.schema.repository import MoveState, move_ledger

# Attempts that may have left a copy in the target bucket without repointing the handle.
UNFINISHED = (MoveState.STARTED.value, MoveState.COPIED.value)


@dataclass(frozen=True)
class PriorAttempt:
    ledger_id: int
    target_object_etag: str | None


def start(
    conn: Connection, run_id: str, project_id: int, handles: Sequence[Handle], target: Target
) -> dict[int, int]:
    """Insert STARTED rows; return ledger id by handle id."""
    if not handles:
        return {}
    now = utcnow()
    rows = [
        {
            "run_id": run_id,
            "project_id": project_id,
            "file_handle_id": h.id,
            "source_bucket": h.bucket,
            "source_key": h.key,
            "target_bucket": target.bucket,
            "target_storage_location_id": target.storage_location_id,
            "content_size": h.size,
            "etag_before": h.etag,
            "state": MoveState.STARTED.value,
            "started_on": now,
            "updated_on": now,
        }
        for h in handles
    ]
    result = conn.execute(
        insert(move_ledger).returning(move_ledger.c.id, move_ledger.c.file_handle_id, sort_by_parameter_order=True),
        rows,
    )
    return {handle_id: ledger_id for ledger_id, handle_id in result}


def prior_attempts(conn: Connection, handle_ids: Iterable[int], target_bucket: str) -> dict[int, PriorAttempt]:
    """Unfinished attempts to move these handles to this bucket (another run, or a crashed one)."""
    found: dict[int, PriorAttempt] = {}
    ids = list(handle_ids)
    for start_at in range(0, len(ids), 1000):
        rows = conn.execute(
            select(move_ledger.c.id, move_ledger.c.file_handle_id, move_ledger.c.target_object_etag)
            .where(move_ledger.c.file_handle_id.in_(ids[start_at : start_at + 1000]))
            .where(move_ledger.c.target_bucket == target_bucket)
            .where(move_ledger.c.state.in_(UNFINISHED + (MoveState.SKIPPED.value, MoveState.FAILED.value)))
            .order_by(move_ledger.c.id)
        )
        for ledger_id, handle_id, etag in rows:
            previous = found.get(handle_id)
            found[handle_id] = PriorAttempt(ledger_id, etag or (previous.target_object_etag if previous else None))
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
    """Set `state`, and per-row extra columns, on ledger rows keyed by ledger id."""
    if not changes:
        return
    columns = sorted({name for extra in changes.values() for name in extra})
    params = [
        {"ledger_id": ledger_id, **{f"new_{name}": extra.get(name) for name in columns}}
        for ledger_id, extra in changes.items()
    ]
    statement = (
        update(move_ledger)
        .where(move_ledger.c.id == bindparam("ledger_id"))
        .values(state=state.value, updated_on=utcnow(), **{name: bindparam(f"new_{name}") for name in columns})
    )
    conn.execute(statement, params)


def repointed_not_archived(conn: Connection, project_id: int | None = None) -> list[Any]:
    """Moves interrupted between the repoint and the archive step: the resume path finishes them."""
    query = select(move_ledger).where(move_ledger.c.state == MoveState.REPOINTED.value)
    if project_id is not None:
        query = query.where(move_ledger.c.project_id == project_id)
    return list(conn.execute(query.order_by(move_ledger.c.id)))
