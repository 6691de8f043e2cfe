"""Step 5: archive the old objects that nothing references any more.

The archive is a copy of the object onto itself in an archive storage class, tagged so that the
bucket's lifecycle rule expires it after the retention period. It must be a new object: lifecycle
expiry counts from the object's creation. A large object is archived part by part over its real
length (its HEAD), never the recorded size, so nothing is truncated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from costalloc_pipeline.buckets import ARCHIVE_TAG
from costalloc_pipeline.mover import claims, lease, ledger
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.copier import (
    CopyOptions,
    S3Errors,
    multipart_copy,
)
from costalloc_pipeline.mover.fencing import Object, WriteFence, still_referenced
from costalloc_pipeline.mover.objects import head
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.schema.repository import MoveState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import StorageClassType

ARCHIVE_TAGGING = f"{ARCHIVE_TAG[0]}={ARCHIVE_TAG[1]}"


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
    """Idempotent: an object already archived (a resumed run) is left as it is. `size` (the
    recorded one) only chooses the path; the multipart path copies what is really there, its parts
    on `pool` (sharing.py). `before_write` runs right before each request that writes (the fence)."""
    try:
        if size is None or size > options.multipart_threshold:
            multipart_copy(
                s3,
                bucket,
                key,
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


@dataclass(frozen=True)
class ArchiveItem:
    ledger_id: int
    bucket: str
    key: str
    size: int | None


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
        # Fenced right before each archive: a run that lost its lease (it stalled) archives nothing more.
        writes = WriteFence(ctx)
        unfenced: set[Object] = set()

        def archive(obj: Object, pool: Executor) -> str | None:
            try:
                archive_object(
                    ctx.s3,
                    obj[0],
                    obj[1],
                    by_object[obj][0].size,
                    ctx.archive_storage_class,
                    ctx.copy,
                    pool,
                    writes.before_write,
                )
            except S3Errors as error:
                return f"archive failed: {error}"
            except lease.LeaseLost as stop:
                result.stopped = stop.reason
                unfenced.add(obj)
                return stop.reason
            return None

        with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
            errors = dict(zip(to_archive, pool.map(lambda obj: archive(obj, pool), to_archive), strict=False))
        done: dict[int, dict[str, Any]] = {}
        retry: dict[int, dict[str, Any]] = {}
        for obj, rows in by_object.items():
            if obj in unfenced:
                # The rows may be another run's by now: this one writes nothing more.
                continue
            if obj not in mine:
                retry.update({r.ledger_id: {"error": f"not archived yet: {refusals[obj]}"} for r in rows})
            elif obj in referenced:
                result.sources_still_referenced += 1
                done.update({r.ledger_id: {"error": "source still referenced; not archived"} for r in rows})
            elif errors[obj] is None:
                result.archived_objects += 1
                done.update(
                    {r.ledger_id: {"archive_bucket": obj[0], "archive_key": obj[1], "archived_on": now} for r in rows}
                )
            else:
                retry.update({r.ledger_id: {"error": errors[obj]} for r in rows})
        with ctx.repository.begin() as conn:
            ledger.record(conn, MoveState.DONE, done)
            ledger.record(conn, MoveState.REPOINTED, retry)
    finally:
        with ctx.repository.begin() as conn:
            claims.release(conn, ctx.run_id, mine)
