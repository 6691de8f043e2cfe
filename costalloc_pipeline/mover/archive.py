"""Step 5: archive the old objects that nothing references any more.

The archive is a copy of the object onto itself in an archive storage class, tagged so that the
bucket's lifecycle rule expires it after the retention period. It must be a new object: lifecycle
expiry counts from the object's creation. A large object is archived part by part over its real
length (its HEAD), never the recorded size, so nothing is truncated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
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


@dataclass
class SourceArchives:
    """The archive step of some repointed moves, from its check to its record: the objects this run
    claimed, those that something still references, and what became of each object archived (an
    error, or LeaseLost where the fence stopped it). Its claims are released when it is recorded,
    or by release_sources when it never is."""

    by_object: dict[Object, list[ArchiveItem]]
    refusals: dict[Object, str | None]
    checked_on: dt.datetime
    writes: WriteFence
    referenced: set[Object] = field(default_factory=set)
    outcomes: dict[Object, str | lease.LeaseLost | None] = field(default_factory=dict)
    recorded: bool = False

    @property
    def claimed(self) -> set[Object]:
        return {obj for obj, why in self.refusals.items() if why is None}

    @property
    def to_archive(self) -> list[Object]:
        return sorted(self.claimed - self.referenced)


def check_sources(ctx: MoveContext, items: Sequence[ArchiveItem], writes: WriteFence | None = None) -> SourceArchives:
    """Claim each old object, then look at what still references it (I2): an AVAILABLE handle here
    or in another stack, an unfinished move of a live run; a claim of another run refuses the
    object. Checked under this run's own claim, right before the archive requests, each fenced by
    `writes` (the bundle's fence, or one of its own)."""
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
    # Fenced right before each archive: a run that lost its lease (it stalled) archives nothing more.
    sources = SourceArchives(by_object, refusals, now, writes or WriteFence(ctx))
    try:
        with ctx.repository.connect() as conn:
            moving = ledger.moving_objects(conn, sources.claimed, lease.live_runs(conn, now))
        sources.referenced = still_referenced(ctx, sources.claimed) | moving
    except BaseException:
        release_sources(ctx, sources)
        raise
    return sources


def archive_source(
    ctx: MoveContext, sources: SourceArchives, obj: Object, pool: Executor
) -> str | lease.LeaseLost | None:
    """Archive one checked object (one request, or a multipart copy whose parts share `pool`): None
    when done, else why not."""
    try:
        archive_object(
            ctx.s3,
            obj[0],
            obj[1],
            sources.by_object[obj][0].size,
            ctx.archive_storage_class,
            ctx.copy,
            pool,
            sources.writes.before_write,
        )
    except S3Errors as error:
        return f"archive failed: {error}"
    except lease.LeaseLost as stop:
        return stop
    return None


def record_archives(ctx: MoveContext, sources: SourceArchives, result: BundleResult) -> None:
    """Record what became of each object (rows whose archive must wait stay REPOINTED, for a later
    run or the resume path) and release the claims, in one transaction."""
    done: dict[int, dict[str, Any]] = {}
    retry: dict[int, dict[str, Any]] = {}
    claimed, untried = sources.claimed, set(sources.to_archive) - set(sources.outcomes)
    for obj, rows in sources.by_object.items():
        outcome = sources.outcomes.get(obj)
        if isinstance(outcome, lease.LeaseLost) or obj in untried:
            # Stopped by the fence, or never tried because the run stopped: the rows may be another
            # run's by now, so this one writes nothing more to them.
            if isinstance(outcome, lease.LeaseLost):
                result.stopped = outcome.reason
            continue
        if obj not in claimed:
            retry.update({r.ledger_id: {"error": f"not archived yet: {sources.refusals[obj]}"} for r in rows})
        elif obj in sources.referenced:
            result.sources_still_referenced += 1
            done.update({r.ledger_id: {"error": "source still referenced; not archived"} for r in rows})
        elif outcome is None:
            result.archived_objects += 1
            archived_on = sources.checked_on
            done.update(
                {
                    r.ledger_id: {"archive_bucket": obj[0], "archive_key": obj[1], "archived_on": archived_on}
                    for r in rows
                }
            )
        else:
            retry.update({r.ledger_id: {"error": outcome} for r in rows})
    with ctx.repository.begin() as conn:
        ledger.record(conn, MoveState.DONE, done)
        ledger.record(conn, MoveState.REPOINTED, retry)
        # After the record, in its transaction: no other run archives or reuses the objects before.
        claims.release(conn, ctx.run_id, claimed)
    sources.recorded = True


def release_sources(ctx: MoveContext, sources: SourceArchives) -> None:
    """Give back the claims of an archive step that was not recorded (it failed on the way)."""
    if not sources.recorded:
        with ctx.repository.begin() as conn:
            claims.release(conn, ctx.run_id, sources.claimed)


def archive_sources(ctx: MoveContext, items: Sequence[ArchiveItem], result: BundleResult) -> None:
    """Archive each old object that nothing references (I2): no AVAILABLE handle here or in another
    stack, no unfinished move of a live run, no claim of another run; all checked again under this
    run's own claim on the object, right before the archive. Rows whose archive must wait stay
    REPOINTED, for a later run or the resume path. (A bundle runs the same steps on its own pool,
    overlapped with its copies: pipeline.py.)"""
    if not items:
        return
    sources = check_sources(ctx, items)
    try:
        with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
            outcomes = list(pool.map(lambda obj: archive_source(ctx, sources, obj, pool), sources.to_archive))
        sources.outcomes.update(zip(sources.to_archive, outcomes, strict=True))
        record_archives(ctx, sources, result)
    finally:
        release_sources(ctx, sources)
