"""One bundle through the whole protocol, in the order that keeps invariants I1-I6."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Engine

from costalloc_pipeline.db import new_etag, utcnow
from costalloc_pipeline.mover import ledger
from costalloc_pipeline.mover.archive import archive_object
from costalloc_pipeline.mover.copier import CopyOptions, VerificationFailed, copy_object, reusable_copy
from costalloc_pipeline.mover.handles import Handle, Target, read_handles, referenced_objects, skip_reason
from costalloc_pipeline.mover.repoint import Repoint, repoint
from costalloc_pipeline.schema.repository import MoveState

S3Errors = (ClientError, BotoCoreError, VerificationFailed)


@dataclass(frozen=True)
class MoveContext:
    repository: Engine
    # Other stacks' repository databases that may reference the same objects (cross-stack safety).
    other_repositories: tuple[Engine, ...]
    s3: Any
    run_id: str
    project_id: int
    target: Target
    managed_buckets: frozenset[str]
    copy: CopyOptions
    archive_storage_class: str
    concurrency: int


@dataclass
class BundleResult:
    moved_files: int = 0
    moved_bytes: int = 0
    reused_copies: int = 0
    archived_objects: int = 0
    sources_still_referenced: int = 0
    changed_meanwhile: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: dict[int, str] = field(default_factory=dict)

    def merge(self, other: "BundleResult") -> "BundleResult":
        return BundleResult(
            moved_files=self.moved_files + other.moved_files,
            moved_bytes=self.moved_bytes + other.moved_bytes,
            reused_copies=self.reused_copies + other.reused_copies,
            archived_objects=self.archived_objects + other.archived_objects,
            sources_still_referenced=self.sources_still_referenced + other.sources_still_referenced,
            changed_meanwhile=self.changed_meanwhile + other.changed_meanwhile,
            skipped=self.skipped + other.skipped,
            failed={**self.failed, **other.failed},
        )


@dataclass(frozen=True)
class ArchiveItem:
    ledger_id: int
    bucket: str
    key: str
    size: int | None


def _copy_one(ctx: MoveContext, handle: Handle, prior: ledger.PriorAttempt | None, occupied: bool) -> tuple[str, bool]:
    """Copy (or reuse an earlier copy of) one handle's object; return (verified ETag, reused)."""
    if prior is not None or occupied:
        known = prior.target_object_etag if prior else None
        etag = reusable_copy(ctx.s3, handle, ctx.target.bucket, known)
        if etag is not None:
            return etag, True
        if occupied:
            # Another AVAILABLE handle owns different bytes at this key: never overwrite it (I1).
            raise VerificationFailed(f"s3://{ctx.target.bucket}/{handle.key} holds another handle's object")
    return copy_object(ctx.s3, handle, ctx.target.bucket, ctx.copy), False


def _still_referenced(ctx: MoveContext, objects: set[tuple[str, str]]) -> set[tuple[str, str]]:
    referenced: set[tuple[str, str]] = set()
    for engine in (ctx.repository, *ctx.other_repositories):
        with engine.connect() as conn:
            referenced |= referenced_objects(conn, objects)
    return referenced


def archive_sources(ctx: MoveContext, items: Sequence[ArchiveItem], result: BundleResult) -> None:
    """Archive each old object that no AVAILABLE handle references any more (I2), then close the
    ledger rows. Rows whose archive failed stay REPOINTED, for the resume path."""
    if not items:
        return
    referenced = _still_referenced(ctx, {(item.bucket, item.key) for item in items})
    by_object: dict[tuple[str, str], list[ArchiveItem]] = {}
    for item in items:
        by_object.setdefault((item.bucket, item.key), []).append(item)
    to_archive = [obj for obj in by_object if obj not in referenced]

    def archive(obj: tuple[str, str]) -> str | None:
        try:
            archive_object(ctx.s3, obj[0], obj[1], by_object[obj][0].size, ctx.archive_storage_class, ctx.copy)
        except S3Errors as error:
            return f"archive failed: {error}"
        return None

    with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
        errors = dict(zip(to_archive, pool.map(archive, to_archive)))
    now = utcnow()
    done: dict[int, dict[str, Any]] = {}
    retry: dict[int, dict[str, Any]] = {}
    for obj, rows in by_object.items():
        if obj in referenced:
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


def move_bundle(ctx: MoveContext, handle_ids: Sequence[int]) -> BundleResult:
    result = BundleResult()
    with ctx.repository.connect() as conn:
        handles = read_handles(conn, handle_ids)
    movable: list[Handle] = []
    for handle in handles:
        reason = skip_reason(handle, ctx.target, ctx.managed_buckets)
        if reason is None:
            movable.append(handle)
        else:
            result.skipped[reason] += 1
    result.skipped["no longer in the repository"] += len(set(handle_ids)) - len(handles)
    if not movable:
        return result

    with ctx.repository.begin() as conn:
        prior = ledger.prior_attempts(conn, [h.id for h in movable], ctx.target.bucket)
        occupied = referenced_objects(conn, [(ctx.target.bucket, h.key) for h in movable])
        ledger_ids = ledger.start(conn, ctx.run_id, ctx.project_id, movable, ctx.target)
        ledger.supersede(conn, [p.ledger_id for p in prior.values()])

    def copy(handle: Handle) -> tuple[Handle, tuple[str, bool] | str]:
        try:
            return handle, _copy_one(ctx, handle, prior.get(handle.id), (ctx.target.bucket, handle.key) in occupied)
        except S3Errors as error:
            return handle, f"copy failed: {error}"

    with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
        outcomes = list(pool.map(copy, movable))
    copied = [(h, outcome) for h, outcome in outcomes if isinstance(outcome, tuple)]
    failed = {h.id: outcome for h, outcome in outcomes if isinstance(outcome, str)}
    result.failed.update(failed)
    result.reused_copies = sum(1 for _, (_, reused) in copied if reused)
    with ctx.repository.begin() as conn:
        ledger.record(conn, MoveState.FAILED, {ledger_ids[i]: {"error": e} for i, e in failed.items()})
        ledger.record(conn, MoveState.COPIED, {ledger_ids[h.id]: {"target_object_etag": etag} for h, (etag, _) in copied})

    moves = [Repoint(h.id, h.etag, new_etag()) for h, _ in copied]
    with ctx.repository.begin() as conn:
        repointed = repoint(conn, moves, ctx.target)
        ledger.record(conn, MoveState.REPOINTED, {ledger_ids[m.handle_id]: {"etag_after": m.etag_after} for m in moves if m.handle_id in repointed})
        ledger.record(
            conn,
            MoveState.SKIPPED,
            {ledger_ids[m.handle_id]: {"error": "handle changed during the move; retried next run"} for m in moves if m.handle_id not in repointed},
        )
    result.changed_meanwhile = len(moves) - len(repointed)
    moved = [h for h, _ in copied if h.id in repointed]
    result.moved_files = len(moved)
    result.moved_bytes = sum(h.size or 0 for h in moved)
    archive_sources(ctx, [ArchiveItem(ledger_ids[h.id], h.bucket, h.key, h.size) for h in moved], result)
    return result
