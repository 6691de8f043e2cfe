"""One writer per project: a lease row in the repository database, with the run id and an expiry.

A run takes the lease before it moves anything, renews it as it goes, and renews it again inside
the transaction of every repoint: a run whose lease expired and was taken over finds no row to
renew there, and stops before it repoints (DESIGN.md section 4). An expired lease is a run that
died; its objects' claims are stale (see claims.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from costalloc_pipeline.errors import Conflict
from costalloc_pipeline.naming import format_entity_id
from costalloc_pipeline.schema.repository import relocation_lease


class LeaseHeld(Conflict):
    """Another live run is moving the project."""


class LeaseLost(Conflict):
    """This run's lease expired and another run took it, or the project's target changed: stop."""


@dataclass(frozen=True)
class Holder:
    run_id: str
    target_bucket: str
    expires_on: dt.datetime


def holder(conn: Connection, project_id: int) -> Holder | None:
    row = conn.execute(
        select(relocation_lease.c.run_id, relocation_lease.c.target_bucket, relocation_lease.c.expires_on).where(
            relocation_lease.c.project_id == project_id
        )
    ).first()
    return None if row is None else Holder(*row)


def acquire(engine: Engine, project_id: int, run_id: str, target_bucket: str, now: dt.datetime, seconds: int) -> None:
    """Take (or renew) the project's lease for this run; LeaseHeld when another live run has it."""
    expires = now + dt.timedelta(seconds=seconds)
    with engine.begin() as conn:
        # Only an expired lease, or this run's own, is taken: the WHERE is evaluated under the row's lock.
        taken = conn.execute(
            update(relocation_lease)
            .where(relocation_lease.c.project_id == project_id)
            .where((relocation_lease.c.run_id == run_id) | (relocation_lease.c.expires_on <= now))
            .values(run_id=run_id, target_bucket=target_bucket, acquired_on=now, expires_on=expires)
        ).rowcount
    if taken:
        return
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(relocation_lease).values(
                    project_id=project_id,
                    run_id=run_id,
                    target_bucket=target_bucket,
                    acquired_on=now,
                    expires_on=expires,
                )
            )
    except IntegrityError:
        with engine.connect() as conn:
            current = holder(conn, project_id)
        if current is None or current.run_id != run_id:
            raise LeaseHeld(
                f"{format_entity_id(project_id)} is being moved by run {current.run_id if current else 'another run'}"
                f" (toward {current.target_bucket if current else '?'}); one run moves a project at a time"
            ) from None


def renew(conn: Connection, project_id: int, run_id: str, now: dt.datetime, seconds: int) -> bool:
    """Extend this run's live lease, in the caller's transaction; False when it is no longer ours."""
    return bool(
        conn.execute(
            update(relocation_lease)
            .where(
                relocation_lease.c.project_id == project_id,
                relocation_lease.c.run_id == run_id,
                relocation_lease.c.expires_on > now,
            )
            .values(expires_on=now + dt.timedelta(seconds=seconds))
        ).rowcount
    )


def release(engine: Engine, project_id: int, run_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            delete(relocation_lease).where(
                relocation_lease.c.project_id == project_id, relocation_lease.c.run_id == run_id
            )
        )


def run_is_live(conn: Connection, run_id: str, now: dt.datetime) -> bool:
    """Whether the run still holds a lease. An expired lease of it is deleted first: the DELETE waits
    for a renewal in progress and then sees it, so a run is never declared dead while renewing."""
    conn.execute(
        delete(relocation_lease).where(relocation_lease.c.run_id == run_id, relocation_lease.c.expires_on <= now)
    )
    return (
        conn.execute(select(relocation_lease.c.project_id).where(relocation_lease.c.run_id == run_id)).first()
        is not None
    )


def live_runs(conn: Connection, now: dt.datetime) -> frozenset[str]:
    return frozenset(
        conn.execute(select(relocation_lease.c.run_id).where(relocation_lease.c.expires_on > now)).scalars()
    )
