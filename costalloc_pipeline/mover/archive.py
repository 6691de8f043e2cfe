"""Step 5: archive the old objects that nothing references any more, by the method each bucket's
state allows (archive_method.py).

- A copy of the object onto itself in an archive storage class, tagged so that the bucket's
  lifecycle rule expires it after the retention period. It must be a new object: lifecycle expiry
  counts from the object's creation. A large object is archived part by part over its real length
  (its HEAD), never the recorded size, so nothing is truncated.
- In a versioned bucket, a DeleteObject conditional on the ETag of the object the move copied: its
  version becomes noncurrent, and the noncurrent-version rule keeps it for the retention period.
  Bytes written at the key since the move are never deleted (the condition fails).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from costalloc_pipeline.buckets import ARCHIVE_TAG
from costalloc_pipeline.mover import claims, lease, ledger
from costalloc_pipeline.mover.archive_method import ArchiveMethod
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.copier import (
    CopyOptions,
    S3Errors,
    multipart_copy,
)
from costalloc_pipeline.mover.fencing import Object, WriteFence, still_referenced
from costalloc_pipeline.mover.objects import error_code, head, unquote
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.schema.repository import MoveState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import StorageClassType

ARCHIVE_TAGGING = f"{ARCHIVE_TAG[0]}={ARCHIVE_TAG[1]}"
# A conditional DeleteObject that found another object at the key (412), or none at all (404).
_NOT_THAT_OBJECT = ("PreconditionFailed", "412", "NoSuchKey", "404")
SOURCE_REPLACED = (
    "the key holds other bytes since the move, named by no handle: left live; the moved version is noncurrent"
)


def is_archived(s3: S3Client, bucket: str, key: str, storage_class: StorageClassType) -> bool:
    found = head(s3, bucket, key)
    return found is not None and found.get("StorageClass") == storage_class


def archive_object(
    s3: S3Client,
    bucket: str,
    key: str,
    size: int | None,
    storage_class: StorageClassType,
    options: CopyOptions,
    pool: Executor,
    before_write: Callable[[], None] = lambda: None,
) -> None:
    """The archive by copy. Idempotent: an object already archived (a resumed run) is left as it is.
    `size` (the recorded one) only chooses the path; the multipart path copies what is really there,
    its parts on `pool` (sharing.py). `before_write` runs right before each request that writes (the fence)."""
    try:
        if size is None or size > options.multipart_threshold:
            multipart_copy(
                s3,
                {"Bucket": bucket, "Key": key},
                bucket,
                options.part_size,
                pool,
                before_write=before_write,
                StorageClass=storage_class,
                Tagging=ARCHIVE_TAGGING,
            )
        else:
            before_write()
            s3.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                StorageClass=storage_class,
                MetadataDirective="COPY",
                TaggingDirective="REPLACE",
                Tagging=ARCHIVE_TAGGING,
            )
    except ClientError:
        # An archive class object cannot be copied again; that means an earlier attempt finished.
        if is_archived(s3, bucket, key, storage_class):
            return
        raise


def delete_archive(s3: S3Client, bucket: str, key: str, etag: str, before_write: Callable[[], None]) -> str:
    """The archive by DeleteObject in a versioned bucket, of the object with `etag` only. Returns ""
    once the object is noncurrent (now, or by an earlier attempt that a crash kept from the
    ledger), or why other bytes at the key were left alone."""
    before_write()
    try:
        s3.delete_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
        return ""
    except ClientError as error:
        if error_code(error) not in _NOT_THAT_OBJECT:
            raise
    if head(s3, bucket, key) is None:
        # No live object at the key: the version the move copied is noncurrent already.
        return ""
    # Written since the move and named by no handle (checked just before): not costalloc's to archive.
    # The moved version became noncurrent when it was overwritten, and the rule keeps it from then.
    return SOURCE_REPLACED


@dataclass(frozen=True)
class ArchiveItem:
    ledger_id: int
    bucket: str
    key: str
    size: int | None
    # The ETag and version of the source object the move copied (None: not recorded, on rows written
    # before they were): an archive by DeleteObject removes exactly that object, so it needs the ETag.
    etag: str | None = None
    version_id: str | None = None


def _own_version(version_id: str | None) -> str | None:
    # S3 names an object written while versioning was off "null"; a DeleteObject may remove such a
    # version for good should the bucket's versioning be suspended meanwhile.
    return version_id if version_id and version_id != "null" else None


@dataclass(frozen=True)
class _Plan:
    method: ArchiveMethod
    # DELETE: the version the DeleteObject makes noncurrent (the archive).
    version_id: str | None = None


def _plan(ctx: MoveContext, methods: dict[str, ArchiveMethod], obj: Object, rows: Sequence[ArchiveItem]) -> _Plan:
    """DELETE where the bucket allows it, every row moved one object (one ETag), and that object has
    a version of its own: named by the copies, else by a HEAD now (a reused copy named none), which
    the ledger records before the delete, so a crash after it still knows the archive's version."""
    etags = {row.etag for row in rows}
    if methods[obj[0]] is not ArchiveMethod.DELETE or None in etags or len(etags) != 1:
        return _Plan(ArchiveMethod.COPY)
    versions = {_own_version(row.version_id) for row in rows}
    if len(versions) == 1 and None not in versions:
        return _Plan(ArchiveMethod.DELETE, versions.pop())
    found = head(ctx.s3, *obj)
    version_id = _own_version(found.get("VersionId")) if found is not None else None
    if found is None or version_id is None or unquote(found["ETag"]) not in etags:
        return _Plan(ArchiveMethod.COPY)
    with ctx.repository.begin() as conn:
        ledger.record(conn, MoveState.REPOINTED, {row.ledger_id: {"source_version_id": version_id} for row in rows})
    return _Plan(ArchiveMethod.DELETE, version_id)


def _archived(obj: Object, plan: _Plan, note: str, now: dt.datetime) -> dict[str, Any]:
    """The DONE row's record of where its bytes are kept: by key, and by version where deleted."""
    return {
        "archive_bucket": obj[0],
        "archive_key": obj[1],
        "archive_method": plan.method.value,
        "archive_version_id": plan.version_id,
        "archived_on": now,
        "error": note or None,
    }


def archive_sources(ctx: MoveContext, items: Sequence[ArchiveItem], result: BundleResult) -> None:
    """Archive each old object that nothing references (I2): no AVAILABLE handle here or in another
    stack, no unfinished move of a live run, no claim of another run; all checked again under this
    run's own claim on the object, right before the archive. Rows whose archive must wait stay
    REPOINTED, for a later run or the resume path."""
    if not items:
        return
    by_object: dict[Object, list[ArchiveItem]] = {}
    for item in items:
        by_object.setdefault((item.bucket, item.key), []).append(item)
    now = ctx.clock()
    refusals = claims.claim(
        ctx.repository,
        ctx.run_id,
        [claims.ClaimRequest(b, k, None) for b, k in sorted(by_object)],
        now,
        ctx.lease_seconds,
    )
    mine = {obj for obj, why in refusals.items() if why is None}
    try:
        with ctx.repository.connect() as conn:
            moving = ledger.moving_objects(conn, mine, lease.live_runs(conn, now))
        referenced = still_referenced(ctx, mine) | moving
        to_archive = sorted(mine - referenced)
        # Read at most STATE_SECONDS before: a bucket whose versioning was suspended meanwhile gets copies.
        methods = {
            bucket: ctx.bucket_states.method(ctx.s3, bucket, ctx.archive_mode, ctx.archive_retention_days, ctx.clock)
            for bucket in {bucket for bucket, _ in to_archive}
        }
        # Fenced right before each archive: a run that lost its lease (it stalled) archives nothing more.
        writes = WriteFence(ctx)
        unfenced: set[Object] = set()

        plans = {obj: _plan(ctx, methods, obj, by_object[obj]) for obj in to_archive}

        def archive(obj: Object, pool: Executor) -> tuple[str | None, str]:
            """(error, note)."""
            rows = by_object[obj]
            try:
                if plans[obj].method is ArchiveMethod.DELETE:
                    return None, delete_archive(ctx.s3, obj[0], obj[1], rows[0].etag or "", writes.before_write)
                archive_object(
                    ctx.s3,
                    obj[0],
                    obj[1],
                    rows[0].size,
                    ctx.archive_storage_class,
                    ctx.copy,
                    pool,
                    writes.before_write,
                )
            except S3Errors as error:
                return f"archive failed: {error}", ""
            except lease.LeaseLost as stop:
                result.stopped = stop.reason
                unfenced.add(obj)
                return stop.reason, ""
            return None, ""

        with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
            outcomes = dict(zip(to_archive, pool.map(lambda obj: archive(obj, pool), to_archive), strict=False))
        done: dict[int, dict[str, Any]] = {}
        retry: dict[int, dict[str, Any]] = {}
        for obj, rows in by_object.items():
            if obj in unfenced:
                # The rows may be another run's by now: this one writes nothing more.
                continue
            if obj not in mine:
                retry.update({r.ledger_id: {"error": f"not archived yet: {refusals[obj]}"} for r in rows})
                continue
            if obj in referenced:
                result.sources_still_referenced += 1
                done.update({r.ledger_id: {"error": "source still referenced; not archived"} for r in rows})
                continue
            error, note = outcomes[obj]
            if error is not None:
                retry.update({r.ledger_id: {"error": error} for r in rows})
                continue
            result.archived_objects += 1
            done.update({r.ledger_id: _archived(obj, plans[obj], note, now) for r in rows})
        with ctx.repository.begin() as conn:
            ledger.record(conn, MoveState.DONE, done)
            ledger.record(conn, MoveState.REPOINTED, retry)
    finally:
        with ctx.repository.begin() as conn:
            claims.release(conn, ctx.run_id, mine)
