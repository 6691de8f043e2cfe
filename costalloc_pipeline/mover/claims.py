"""Claims on objects: the target key of a copy, or an object about to be archived.

A run claims (bucket, key) in the repository database before it copies to it, reuses it, or
archives it, and releases the claim in the transaction of its repoint (after which an AVAILABLE
handle names the object) or after the archive. While one run's claim stands no other run writes,
reuses or archives that object; within a run, two different sources never claim one target key.

A claim is stale, and may be taken over, once its run holds no live lease *and* its hold has run
out: one more lease period after the run's last renewal. A run that stalled (a long pause, a
request slow in flight) may still have a write on its way when its lease expires; the margin lets
that write land before another run may decide anything about the key. A server that honours
conditional writes (S3 does on CopyObject and CompleteMultipartUpload) refuses such a late write
anyway; one that ignores them (moto on CopyObject) has only this margin.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from costalloc_pipeline.mover.lease import run_is_live
from costalloc_pipeline.mover.relation import batches, insert_rows
from costalloc_pipeline.schema.repository import object_claim

Object = tuple[str, str]
_CHUNK = 500
# What a new claim records of its object; the rest of the row is the run's.
_FRESH_COLUMNS = ("object_id", "bucket", "key", "source_bucket")


@dataclass(frozen=True)
class ClaimRequest:
    bucket: str
    key: str
    # The bucket a copy comes from (its key is the same); None for an archive.
    source_bucket: str | None


def held_until(now: dt.datetime, lease_seconds: int) -> dt.datetime:
    """How long a claim made or renewed now stands: the lease this run now holds, plus one more."""
    return now + dt.timedelta(seconds=2 * lease_seconds)


def object_id(bucket: str, key: str) -> str:
    return hashlib.sha256(f"{bucket}\0{key}".encode()).hexdigest()


@dataclass(frozen=True)
class _Held:
    run_id: str
    source_bucket: str | None
    until: dt.datetime | None


def _existing(conn: Connection, ids: list[str]) -> dict[str, _Held]:
    found: dict[str, _Held] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(
                object_claim.c.object_id, object_claim.c.run_id, object_claim.c.source_bucket, object_claim.c.held_until
            ).where(object_claim.c.object_id.in_(ids[start : start + _CHUNK]))
        )
        found.update({row.object_id: _Held(row.run_id, row.source_bucket, row.held_until) for row in rows})
    return found


def _claim_once(
    conn: Connection, run_id: str, requests: list[ClaimRequest], now: dt.datetime, lease_seconds: int
) -> dict[Object, str | None]:
    ids = {(r.bucket, r.key): object_id(r.bucket, r.key) for r in requests}
    until = held_until(now, lease_seconds)
    existing = _existing(conn, sorted(set(ids.values())))
    outcome: dict[Object, str | None] = {}
    fresh: list[tuple[str, str, str, str | None]] = []
    for request in requests:
        obj = (request.bucket, request.key)
        if obj in outcome:
            continue
        holder = existing.get(ids[obj])
        if holder is None:
            fresh.append((ids[obj], obj[0], obj[1], request.source_bucket))
            outcome[obj] = None
        elif holder.run_id == run_id:
            same = holder.source_bucket == request.source_bucket
            outcome[obj] = (
                None if same else f"another source of this run ({holder.source_bucket}) is copied to this key"
            )
        elif run_is_live(conn, holder.run_id, now) or (holder.until is not None and holder.until > now):
            outcome[obj] = f"run {holder.run_id} is writing or archiving s3://{obj[0]}/{obj[1]}"
        else:
            # The holder's lease expired and its hold ran out: it died, so its claim is stale.
            conn.execute(
                update(object_claim)
                .where(object_claim.c.object_id == ids[obj], object_claim.c.run_id == holder.run_id)
                .values(run_id=run_id, source_bucket=request.source_bucket, claimed_on=now, held_until=until)
            )
            outcome[obj] = None
    shared = {"run_id": run_id, "claimed_on": now, "held_until": until}
    for batch in batches(fresh):
        conn.execute(insert_rows(conn, object_claim, _FRESH_COLUMNS, batch, shared))
    return outcome


def claim(
    engine: Engine, run_id: str, requests: Iterable[ClaimRequest], now: dt.datetime, lease_seconds: int
) -> dict[Object, str | None]:
    """Claim each object for this run: None where granted, else why not. Later requests for an
    object already requested in the same call get the first one's answer."""
    wanted = list(requests)
    if not wanted:
        return {}
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                return _claim_once(conn, run_id, wanted, now, lease_seconds)
        except IntegrityError:
            # Another run inserted one of these claims at the same moment: look again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def extend(conn: Connection, run_id: str, now: dt.datetime, lease_seconds: int) -> None:
    """Renew the hold of every claim of the run, with its lease (in the renewal's transaction)."""
    conn.execute(
        update(object_claim).where(object_claim.c.run_id == run_id).values(held_until=held_until(now, lease_seconds))
    )


def held(conn: Connection, run_id: str, objects: Collection[Object]) -> set[Object]:
    """Which of these objects this run still has claimed (read in the caller's transaction)."""
    by_id = {object_id(*obj): obj for obj in objects}
    ids = sorted(by_id)
    found: set[Object] = set()
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(object_claim.c.object_id).where(
                object_claim.c.object_id.in_(ids[start : start + _CHUNK]), object_claim.c.run_id == run_id
            )
        ).scalars()
        found.update(by_id[row] for row in rows)
    return found


def release(conn: Connection, run_id: str, objects: Collection[Object]) -> None:
    ids = sorted({object_id(*obj) for obj in objects})
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            delete(object_claim).where(
                object_claim.c.object_id.in_(ids[start : start + _CHUNK]), object_claim.c.run_id == run_id
            )
        )


def release_run(engine: Engine, run_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(object_claim).where(object_claim.c.run_id == run_id))
