"""Retiring a cost allocation: its row goes, and its bucket too when asked and safe.

Only a cost allocation nobody uses can go: no project (ACTIVE or REMOVING), no AVAILABLE handle in
its bucket, no unfinished move or live relocation run naming the bucket, and no live object in the
bucket (archives are not live: they are the recovery path of moved files, DESIGN.md I3). The
bucket is deleted only on request; archives in it go early only on a second, explicit request,
since that ends their recovery path. Nothing enters the change log: it records association
changes, and a retired cost allocation has none.

Concurrency: the database checks are made again under the cost allocation row's write lock, taken
by the first statement of the transaction (SQLite: the database's write lock; PostgreSQL: the
row's), and the foreign key of cost_allocation_project refuses an association to a deleted row, so
an assign racing the retire either lands first (the retire is refused) or finds the name gone and
starts afresh. S3 is changed only after the commit: a bucket that S3 then keeps is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from costalloc_pipeline.allocations.bucket_contents import BucketContents, bucket_contents, empty_out
from costalloc_pipeline.allocations.retired import mark_retired
from costalloc_pipeline.db import new_etag, utcnow
from costalloc_pipeline.errors import Conflict, NotFound
from costalloc_pipeline.naming import format_entity_id, normalise_name
from costalloc_pipeline.schema.repository import (
    AssociationState,
    FileStatus,
    MoveState,
    cost_allocation,
    cost_allocation_project,
    files,
    move_ledger,
    relocation_lease,
    storage_location,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_UNFINISHED = (MoveState.STARTED.value, MoveState.COPIED.value, MoveState.REPOINTED.value)
# Named in a refusal: enough to act on, short enough for one line.
_FIRST = 3


@dataclass(frozen=True)
class Retired:
    id: int
    name: str
    bucket: str
    bucket_deleted: bool
    # The archives deleted (--expire-archives), or kept in the bucket.
    archives_deleted: int
    archives_kept: int
    storage_location_id: int
    storage_location_kept: bool
    # What S3 answered when it refused to delete archives or the bucket; None otherwise.
    s3_refused: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "bucket": self.bucket,
            "bucketDeleted": self.bucket_deleted,
            "archivesDeleted": self.archives_deleted,
            "archivesKept": self.archives_kept,
            "storageLocationId": str(self.storage_location_id),
            "storageLocationKept": self.storage_location_kept,
            "s3Refused": self.s3_refused,
        }

    def summary(self) -> list[str]:
        lines = [f"retired cost allocation {self.name} (id {self.id})"]
        if self.bucket_deleted:
            lines.append(f"bucket {self.bucket} deleted, with {self.archives_deleted} archives")
        else:
            if self.archives_deleted:
                lines.append(f"{self.archives_deleted} archives deleted from bucket {self.bucket}")
            if self.s3_refused is not None:
                lines.append(f"S3 refused to empty or delete bucket {self.bucket} ({self.s3_refused})")
            lines.append(
                f"bucket {self.bucket} kept with {self.archives_kept} archives (they expire by its lifecycle "
                "rule); delete it with --delete-bucket"
            )
        if self.storage_location_kept:
            lines.append(
                f"storage location {self.storage_location_id} kept: handles or moves of the past name it "
                "(so the name cannot be given to a new cost allocation)"
            )
        return lines


def _find(conn: Connection, allocation: int | str) -> Any:
    if isinstance(allocation, int):
        row = conn.execute(select(cost_allocation).where(cost_allocation.c.id == allocation)).first()
        if row is None:
            raise NotFound(f"cost allocation {allocation} does not exist")
    else:
        row = conn.execute(select(cost_allocation).where(cost_allocation.c.name == allocation)).first()
        if row is None:
            raise NotFound(f"cost allocation {allocation!r} does not exist")
    return row


def _why_in_use(conn: Connection, allocation_id: int, bucket: str) -> str | None:
    """Why the cost allocation cannot be retired yet, from the database; None when nothing uses it."""
    projects = conn.execute(
        select(cost_allocation_project.c.project_id, cost_allocation_project.c.state)
        .where(cost_allocation_project.c.cost_allocation_id == allocation_id)
        .order_by(cost_allocation_project.c.project_id)
    ).all()
    if projects:
        named = ", ".join(f"{format_entity_id(p.project_id)} ({p.state})" for p in projects[:_FIRST])
        removing = all(p.state == AssociationState.REMOVING.value for p in projects)
        then = "wait until their files are back in the default bucket" if removing else "unassign them first"
        return f"{len(projects)} projects are associated with it: {named}; {then}"
    handles = conn.execute(
        select(func.count(), func.min(files.c.id)).where(
            files.c.bucket_name == bucket, files.c.status == FileStatus.AVAILABLE.value
        )
    ).one()
    if handles[0]:
        return f"{handles[0]} AVAILABLE file handles point into bucket {bucket} (first: {handles[1]})"
    moves = conn.execute(
        select(func.count()).where(
            move_ledger.c.state.in_(_UNFINISHED),
            or_(move_ledger.c.source_bucket == bucket, move_ledger.c.target_bucket == bucket),
        )
    ).scalar_one()
    if moves:
        return (
            f"{moves} moves naming bucket {bucket} are not finished (sources waiting for their grace period "
            "before they are archived, or interrupted moves); `costalloc resume` finishes them once due, then retry"
        )
    runs = conn.execute(
        select(func.count()).where(relocation_lease.c.target_bucket == bucket, relocation_lease.c.expires_on > utcnow())
    ).scalar_one()
    if runs:
        return f"a relocation run is moving files toward bucket {bucket}"
    return None


def _why_bucket_in_use(contents: BucketContents, bucket: str, deleting: bool, expire_archives: bool) -> str | None:
    if contents.live_keys:
        first = ", ".join(contents.live_keys[:_FIRST])
        return f"bucket {bucket} holds {len(contents.live_keys)} objects that are not archives (first: {first})"
    if deleting and contents.archives and not expire_archives:
        return (
            f"bucket {bucket} holds {len(contents.archives)} archives, the recovery path of moved files until "
            "they expire; retire without --delete-bucket to keep them, or add --expire-archives to delete them now"
        )
    return None


def _recorded_archives(bind: Engine, bucket: str) -> set[str]:
    with bind.connect() as conn:
        return set(
            conn.execute(
                select(move_ledger.c.archive_key).where(
                    move_ledger.c.archive_bucket == bucket, move_ledger.c.archive_key.is_not(None)
                )
            ).scalars()
        )


def _storage_location_referenced(conn: Connection, location_id: int, bucket: str) -> bool:
    by_handle = select(files.c.id).where(or_(files.c.storage_location_id == location_id, files.c.bucket_name == bucket))
    by_move = select(move_ledger.c.id).where(
        or_(
            move_ledger.c.target_storage_location_id == location_id,
            move_ledger.c.source_bucket == bucket,
            move_ledger.c.target_bucket == bucket,
            move_ledger.c.archive_bucket == bucket,
        )
    )
    return any(conn.execute(query.limit(1)).first() is not None for query in (by_handle, by_move))


def _remove_rows(bind: Engine, allocation_id: int, bucket: str, expire_archives: bool) -> bool:
    """Deletes the row (and its storage location when nothing names it); True when the location stays."""
    try:
        with bind.begin() as conn:
            # The write lock first, then the checks again: no assign slips in between (module docstring).
            locked = conn.execute(
                update(cost_allocation).where(cost_allocation.c.id == allocation_id).values(etag=new_etag())
            ).rowcount
            if locked != 1:
                raise NotFound(f"cost allocation {allocation_id} was retired concurrently")
            why = _why_in_use(conn, allocation_id, bucket)
            if why is not None:
                raise Conflict(f"cost allocation {allocation_id} cannot be retired: {why}")
            location_id, name = conn.execute(
                select(cost_allocation.c.storage_location_id, cost_allocation.c.name).where(
                    cost_allocation.c.id == allocation_id
                )
            ).one()
            conn.execute(delete(cost_allocation).where(cost_allocation.c.id == allocation_id))
            kept = _storage_location_referenced(conn, location_id, bucket)
            if kept:
                mark_retired(conn, location_id, name, expire_archives)
            else:
                conn.execute(delete(storage_location).where(storage_location.c.id == location_id))
            return kept
    except IntegrityError:
        raise Conflict(
            f"cost allocation {allocation_id} was assigned to a project concurrently; nothing was retired"
        ) from None


def retire(
    bind: Engine,
    s3: S3Client,
    allocation: int | str,
    delete_the_bucket: bool = False,
    expire_archives: bool = False,
) -> Retired:
    """Retires the cost allocation of that id (int) or name (str); see the module docstring.
    `expire_archives` deletes the bucket's archives now, whether the bucket goes or stays.
    Raises NotFound, Conflict (409: still in use, with the reason), BadRequest or Unavailable."""
    key = allocation if isinstance(allocation, int) else normalise_name(allocation)
    with bind.connect() as conn:
        row = _find(conn, key)
        why = _why_in_use(conn, row.id, row.bucket)
    refusal = f"cost allocation {row.name} (id {row.id}) cannot be retired: "
    if why is not None:
        raise Conflict(refusal + why)
    contents = bucket_contents(s3, row.bucket, _recorded_archives(bind, row.bucket))
    why = _why_bucket_in_use(contents, row.bucket, delete_the_bucket, expire_archives)
    if why is not None:
        raise Conflict(refusal + why)
    location_kept = _remove_rows(bind, row.id, row.bucket, expire_archives)
    archives_deleted, refused = 0, None
    if contents.exists:
        archives_deleted, refused = empty_out(s3, row.bucket, contents, expire_archives, delete_the_bucket)
    return Retired(
        id=row.id,
        name=row.name,
        bucket=row.bucket,
        bucket_deleted=delete_the_bucket and refused is None,
        archives_deleted=archives_deleted,
        archives_kept=len(contents.archives) - archives_deleted,
        storage_location_id=row.storage_location_id,
        storage_location_kept=location_kept,
        s3_refused=refused,
    )
