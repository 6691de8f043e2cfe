"""Step 5: archive the old objects that nothing references any more, by the method each bucket's
state allows (archive_method.py).

- A copy of the object onto itself in an archive storage class, tagged so that the bucket's
  lifecycle rule expires it after the retention period. It must be a new object: lifecycle expiry
  counts from the object's creation. A large object is archived part by part over its real length
  (its HEAD), never the recorded size, so nothing is truncated.
- In a versioned bucket, a delete conditional on the ETag of the object the move copied, one
  DeleteObjects request for a batch: its version becomes noncurrent, and the noncurrent-version
  rule keeps it for the retention period. Bytes written at the key since the move are never deleted.
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
from costalloc_pipeline.mover.archive_method import (
    DELETE_BATCH,
    ArchiveMethod,
    ArchivePlan,
    delete_archives,
    plan_archive,
)
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
# What became of one object's archive request: None when done, else why not.
Outcome = str | lease.LeaseLost | None


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
    """The archive by copy. Idempotent: an object already archived (a resumed run) is left as it
    is. `size` (the recorded one) only chooses the path; the multipart path copies what is really there, its parts
    on `pool` (sharing.py). `before_write` runs right before each request that writes (the fence)."""
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
    # How each object to archive is archived, and what a DeleteObject left alone (archive_method.py).
    plans: dict[Object, ArchivePlan] = field(default_factory=dict)
    notes: dict[Object, str] = field(default_factory=dict)
    outcomes: dict[Object, Outcome] = field(default_factory=dict)
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
        sources.plans = _plans(ctx, sources)
    except BaseException:
        release_sources(ctx, sources)
        raise
    return sources


def _plans(ctx: MoveContext, sources: SourceArchives) -> dict[Object, ArchivePlan]:
    """The method of each object to archive; a version looked up now is in the ledger before its delete."""
    methods = {
        bucket: ctx.bucket_states.method(ctx.s3, bucket, ctx.archive_mode, ctx.archive_retention_days, ctx.clock)
        for bucket in {bucket for bucket, _ in sources.to_archive}
    }
    plans: dict[Object, ArchivePlan] = {}
    looked_up: dict[int, dict[str, Any]] = {}
    for obj in sources.to_archive:
        rows = sources.by_object[obj]
        etags, versions = {row.etag for row in rows}, {row.version_id for row in rows}
        plans[obj], new = plan_archive(ctx.s3, methods[obj[0]], etags, versions, *obj)
        if new:
            looked_up.update({row.ledger_id: {"source_version_id": plans[obj].version_id} for row in rows})
    if looked_up:
        with ctx.repository.begin() as conn:
            ledger.record(conn, MoveState.REPOINTED, looked_up)
    return plans


def _archived(obj: Object, plan: ArchivePlan, note: str, archived_on: dt.datetime) -> dict[str, Any]:
    """The DONE row's record of where its bytes are kept: by key, and by version where deleted."""
    return {
        "archive_bucket": obj[0],
        "archive_key": obj[1],
        "archive_method": plan.method.value,
        "archive_version_id": plan.version_id,
        "archived_on": archived_on,
        "error": note or None,
    }


def archive_requests(sources: SourceArchives) -> list[tuple[Object, ...]]:
    """The requests that archive the checked objects: one an archive copy, one a bucket's batch of
    DeleteObjects (up to DELETE_BATCH keys)."""
    requests: list[tuple[Object, ...]] = []
    deletes: dict[str, list[Object]] = {}
    for obj in sources.to_archive:
        if sources.plans[obj].method is ArchiveMethod.DELETE:
            deletes.setdefault(obj[0], []).append(obj)
        else:
            requests.append((obj,))
    for objects in deletes.values():
        requests += [tuple(objects[start : start + DELETE_BATCH]) for start in range(0, len(objects), DELETE_BATCH)]
    return requests


def archive_source(
    ctx: MoveContext, sources: SourceArchives, objects: tuple[Object, ...], pool: Executor
) -> dict[Object, Outcome]:
    """Archive checked objects, by one request of archive_requests (an archive copy, whose parts of
    a multipart copy share `pool`, or a batch of DeleteObjects): None for each object done, else why not."""
    first = objects[0]
    try:
        if sources.plans[first].method is ArchiveMethod.DELETE:
            etags = {key: sources.by_object[(bucket, key)][0].etag or "" for bucket, key in objects}
            deleted = delete_archives(ctx.s3, first[0], etags, sources.writes.before_write)
            sources.notes.update({(first[0], key): note for key, note in deleted.notes.items() if note})
            return {obj: deleted.errors.get(obj[1]) for obj in objects}
        archive_object(
            ctx.s3,
            first[0],
            first[1],
            sources.by_object[first][0].size,
            ctx.archive_storage_class,
            ctx.copy,
            pool,
            sources.writes.before_write,
        )
    except S3Errors as error:
        return dict.fromkeys(objects, f"archive failed: {error}")
    except lease.LeaseLost as stop:
        return dict.fromkeys(objects, stop)
    return {first: None}


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
            archived = _archived(obj, sources.plans[obj], sources.notes.get(obj, ""), sources.checked_on)
            done.update(dict.fromkeys((r.ledger_id for r in rows), archived))
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
            for outcomes in pool.map(
                lambda objects: archive_source(ctx, sources, objects, pool), archive_requests(sources)
            ):
                sources.outcomes.update(outcomes)
        record_archives(ctx, sources, result)
    finally:
        release_sources(ctx, sources)
