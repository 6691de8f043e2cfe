"""The checks a run makes right before it acts: its lease and its project's target still hold
(in the caller's transaction), and which objects a handle of this or another stack still names."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from costalloc_pipeline.mover import claims, lease
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.handles import referenced_objects
from costalloc_pipeline.placement.rule import project_target

Object = tuple[str, str]


def fence(conn: Connection, ctx: MoveContext) -> None:
    """Renew the run's lease (and the hold of its claims) and check the project's target, in the
    caller's transaction."""
    now = ctx.clock()
    if not lease.renew(conn, ctx.project_id, ctx.run_id, now, ctx.lease_seconds):
        raise lease.LeaseLost(f"run {ctx.run_id} no longer holds the project's lease; it stops")
    claims.extend(conn, ctx.run_id, now, ctx.lease_seconds)
    target = project_target(conn, ctx.project_id)
    if target != ctx.target:
        raise lease.LeaseLost(f"the project's target changed to {target.bucket}; the run stops")


class WriteFence:
    """Guards each write of a bundle's copies (from any of its threads): a write starts only while
    the run's lease was renewed less than a third of a lease period ago, renewing it first when
    not. So every copy request leaves with at least two thirds of a lease, and its claim's margin
    (claims.py), ahead of it; a run that lost its lease raises LeaseLost instead of writing."""

    def __init__(self, ctx: MoveContext) -> None:
        self._ctx = ctx
        # Reentrant: a coordinator holding it (exclusive) may run a task in its own thread.
        self._lock = threading.RLock()
        self._renewed_at: dt.datetime | None = None

    def _fresh(self, now: dt.datetime) -> bool:
        return self._renewed_at is not None and (now - self._renewed_at).total_seconds() < self._ctx.lease_seconds / 3

    def before_write(self) -> None:
        # The renewal time only moves forward, so a fresh one read without the lock is still fresh.
        if self._fresh(self._ctx.clock()):
            return
        with self._lock:
            now = self._ctx.clock()
            if self._fresh(now):
                return
            with self._ctx.repository.begin() as conn:
                fence(conn, self._ctx)
            self._renewed_at = now

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """No renewal of this fence starts while the caller's transactions run, so a run's
        transactions never wait on each other: a renewal extends every claim of the run, and a
        transaction that releases or takes some of them would lock the same rows in another order."""
        with self._lock:
            yield


def still_referenced(ctx: MoveContext, objects: set[Object], any_status: bool = False) -> set[Object]:
    """Objects a handle of this stack or of another one still names."""
    referenced: set[Object] = set()
    for engine in (ctx.repository, *ctx.other_repositories):
        with engine.connect() as conn:
            referenced |= referenced_objects(conn, objects, any_status)
    return referenced
