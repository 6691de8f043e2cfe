"""Steps 3 to 5 of a bundle, overlapped: the bundle keeps copying while the copies made so far are
recorded, repointed and their sources archived, so its requests stay in flight (issue 14).

One pool of `concurrency` workers runs the bundle's S3 requests: the copies, the archives, and a
large object's parts (sharing.py), so the requests in flight never exceed the client's connections.
The coordinating thread, the caller's, makes every database transaction of the bundle itself, one
after another, as before: a run's transactions never wait on each other. It keeps up to two waves
of requests submitted (archives first: they finish moves) and, each time a batch of copies is
verified (`repoint_batch`, or when no copy is left to wait for), takes them through the protocol's
steps in their order, each in its own transaction, as the whole bundle went before:

- COPIED with each copy's ETag (and FAILED for the copies that failed), before the repoint;
- the repoint, in one transaction that first renews the run's lease and checks the project's
  target and the claims on the target keys (a run that lost its lease or whose target changed
  stops here), conditional on each handle's etag (I4), with REPOINTED or SKIPPED;
- when the grace period is 0, the archive check of those sources under this run's claims
  (archive.check_sources), their archive requests on the pool, then DONE and the claims' release.

A crash at any point leaves each row in a state the resume path and the next run finish (I6), the
same states a crash of the unbatched bundle left: STARTED (copied or not, the handle unchanged),
COPIED (the copy verified and known), REPOINTED (the source kept until its archive) or DONE.

A run that stops (lost lease, changed target) submits nothing more, lets the requests under way
end, records what became of each (copies SKIPPED with their ETags, archives DONE) and raises
LeaseLost. In the randomized interleavings the pool runs each task at once in the caller's thread
(tests/mover/simulation.py), so the batches interleave there too, one request at a time.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from costalloc_pipeline.db import new_etag
from costalloc_pipeline.mover import claims, lease, ledger
from costalloc_pipeline.mover.archive import (
    ArchiveItem,
    SourceArchives,
    archive_requests,
    archive_source,
    check_sources,
    record_archives,
    release_sources,
)
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.copier import S3Errors, VerificationFailed
from costalloc_pipeline.mover.copy_step import copy_one, copy_plans, failure
from costalloc_pipeline.mover.fencing import Object, WriteFence, fence
from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.mover.repoint import Repoint, repoint
from costalloc_pipeline.schema.repository import MoveState

# Requests submitted ahead, in waves of `concurrency`: a second wave waits in the pool's queue, so
# no worker waits for the coordinator.
_WAVES = 2
CHANGED_MEANWHILE = "handle changed during the move; retried next run"


@dataclass(frozen=True)
class _Copied:
    etag: str
    reused: bool
    # The source object copied: its ETag and, in a versioned bucket, its version (archive_method.py).
    source_etag: str
    source_version_id: str | None


@dataclass(frozen=True)
class _Failed:
    reason: str
    # The ETag of a copy that failed its verification, if one was made (the ledger keeps it).
    made_etag: str | None


@dataclass
class _Archiving:
    """An archive step under way: its requests not answered yet."""

    sources: SourceArchives
    waiting: int


@dataclass(frozen=True)
class _ArchiveRequest:
    step: _Archiving
    # One request's objects (archive.archive_requests): an archive copy, or a batch of DeleteObjects.
    objects: tuple[Object, ...]


_CopyOutcome = _Copied | _Failed | lease.LeaseLost


class _Bundle:
    """One bundle's steps 3 to 5: what is still to copy, the requests under way, and the copies,
    failures and archive steps not recorded yet."""

    def __init__(self, ctx: MoveContext, movable: list[Handle], ledger_ids: dict[int, int], result: BundleResult):
        self.ctx, self.ledger_ids, self.result = ctx, ledger_ids, result
        self.plans, self.sources = copy_plans(ctx, movable)
        self.writes = WriteFence(ctx)
        self.pending: deque[Handle] = deque(movable)
        self.requests: deque[_ArchiveRequest] = deque()
        # Requests submitted and not collected yet (copies among them), and the answers the workers
        # hand over, collected a wave at a time: waking the coordinator at each answer cost more
        # CPU than the answer's own work.
        self.running = self.copying = 0
        self.answered = threading.Condition()
        self.answers: list[tuple[Handle | _ArchiveRequest, object, BaseException | None]] = []
        # Verified copies and failures not recorded yet; the archive steps not recorded yet.
        self.copied: list[tuple[Handle, _Copied]] = []
        self.failed: dict[int, _Failed] = {}
        self.archiving: list[_Archiving] = []
        self.stopped_ids: list[int] = []
        self.stop: lease.LeaseLost | None = None

    # --- requests on the pool (worker threads: S3 only, no database but the write fence) ---

    def _copy(self, handle: Handle, pool: Executor) -> _CopyOutcome:
        plan, source = self.plans[handle.id], self.sources[(handle.bucket or "", handle.key or "")]
        try:
            copied, reused = copy_one(self.ctx, pool, self.writes, handle, plan, source)
        except S3Errors as error:
            made = error.made_etag if isinstance(error, VerificationFailed) else None
            return _Failed(failure(error), made)
        except lease.LeaseLost as stop:
            return stop
        # A copy is made (or reused) only from a source that was looked at and holds the handle's bytes.
        assert source is not None
        return _Copied(copied.etag, reused, source.etag, copied.source_version_id)

    def _answer(self, task: Handle | _ArchiveRequest, work: Callable[[], object]) -> None:
        answer: tuple[Handle | _ArchiveRequest, object, BaseException | None]
        try:
            answer = (task, work(), None)
        except BaseException as error:  # noqa: BLE001 -- raised again by the coordinator (run)
            answer = (task, None, error)
        with self.answered:
            self.answers.append(answer)
            if self._wave_answered() or answer[2] is not None or isinstance(answer[1], lease.LeaseLost):
                self.answered.notify()

    def _wave_answered(self) -> bool:
        # A wave, or every request in flight when fewer: the other wave keeps the workers busy.
        return len(self.answers) >= min(self.ctx.concurrency, self.running)

    def _collect_answers(self) -> list[tuple[Handle | _ArchiveRequest, object, BaseException | None]]:
        with self.answered:
            self.answered.wait_for(
                lambda: (
                    self._wave_answered()
                    or any(e is not None or isinstance(o, lease.LeaseLost) for _, o, e in self.answers)
                )
            )
            answers, self.answers = self.answers, []
            self.running -= len(answers)
        return answers

    def _submit(self, pool: Executor) -> None:
        while self.stop is None and self.running < _WAVES * self.ctx.concurrency:
            task: Handle | _ArchiveRequest
            work: Callable[[], object]
            if self.requests:
                task = self.requests.popleft()
                work = partial(archive_source, self.ctx, task.step.sources, task.objects, pool)
            elif self.pending:
                task = self.pending.popleft()
                work = partial(self._copy, task, pool)
                self.copying += 1
            else:
                return
            with self.answered:
                self.running += 1
            pool.submit(self._answer, task, work)

    # --- the coordinator (the caller's thread: every transaction) ---

    def run(self, pool: Executor) -> None:
        while self.running or (self.stop is None and (self.pending or self.requests)):
            self._submit(pool)
            for task, outcome, error in self._collect_answers():
                self.copying -= isinstance(task, Handle)
                if error is not None:
                    raise error
                self._collect(outcome, task)
            ready = len(self.copied) >= self.ctx.repoint_batch or not (self.copying or self.pending)
            if self.stop is None and ready and (self.copied or self.failed):
                with self.writes.exclusive():
                    self._repoint_batch()
        self._finish()

    def _collect(self, outcome: object, task: Handle | _ArchiveRequest) -> None:
        if isinstance(task, _ArchiveRequest):
            assert isinstance(outcome, dict)
            task.step.sources.outcomes.update(outcome)
            task.step.waiting -= 1
            stopped = next((o for o in outcome.values() if isinstance(o, lease.LeaseLost)), None)
            if stopped is not None:
                self.stop = self.stop or stopped
            elif task.step.waiting == 0:
                with self.writes.exclusive():
                    self._record_archives(task.step)
        elif isinstance(outcome, _Copied):
            self.copied.append((task, outcome))
            self.result.reused_copies += outcome.reused
        elif isinstance(outcome, _Failed):
            self.failed[task.id] = outcome
        else:
            assert isinstance(outcome, lease.LeaseLost)
            self.stopped_ids.append(task.id)
            self.stop = self.stop or outcome

    def _record_failed(self) -> dict[int, dict[str, Any]]:
        failed, self.failed = self.failed, {}
        self.result.failed.update({handle_id: f.reason for handle_id, f in failed.items()})
        return {
            self.ledger_ids[handle_id]: {"error": f.reason, "target_object_etag": f.made_etag}
            for handle_id, f in failed.items()
        }

    def _repoint_batch(self) -> None:
        ctx, ids = self.ctx, self.ledger_ids
        batch, self.copied = self.copied, []
        with ctx.repository.begin() as conn:
            ledger.record(conn, MoveState.FAILED, self._record_failed())
            # The copy's ETag before the repoint: a later run knows the object as costalloc's own. The
            # source's ETag and version: its archive by DeleteObject removes exactly that object.
            ledger.record(
                conn,
                MoveState.COPIED,
                {
                    ids[h.id]: {
                        "target_object_etag": c.etag,
                        "source_object_etag": c.source_etag,
                        "source_version_id": c.source_version_id,
                    }
                    for h, c in batch
                },
            )
        if not batch:
            return
        moves = [Repoint(h.id, h.etag, new_etag()) for h, _ in batch]
        repointed_on = ctx.clock()
        try:
            with ctx.repository.begin() as conn:
                fence(conn, ctx)
                keys = {(ctx.target.bucket, h.key or "") for h, _ in batch}
                still_claimed = claims.held(conn, ctx.run_id, keys)
                ours = {h.id for h, _ in batch if (ctx.target.bucket, h.key or "") in still_claimed}
                repointed = repoint(conn, [m for m in moves if m.handle_id in ours], ctx.target)
                after = {"repointed_on": repointed_on}
                ledger.record(
                    conn,
                    MoveState.REPOINTED,
                    {
                        ids[m.handle_id]: {"etag_after": m.etag_after, **after}
                        for m in moves
                        if m.handle_id in repointed
                    },
                )
                changed = {
                    ids[m.handle_id]: {"error": CHANGED_MEANWHILE} for m in moves if m.handle_id not in repointed
                }
                ledger.record(conn, MoveState.SKIPPED, changed)
        except lease.LeaseLost as stop:
            with ctx.repository.begin() as conn:
                ledger.record(conn, MoveState.SKIPPED, {ids[m.handle_id]: {"error": stop.reason} for m in moves})
            self.stop = self.stop or stop
            return
        moved = [(h, c) for h, c in batch if h.id in repointed]
        self.result.changed_meanwhile += len(moves) - len(repointed)
        self.result.moved_files += len(moved)
        self.result.moved_bytes += sum(h.size or 0 for h, _ in moved)
        items = [
            ArchiveItem(ids[h.id], h.bucket or "", h.key or "", h.size, c.source_etag, c.source_version_id)
            for h, c in moved
        ]
        if ctx.archive_grace_seconds > 0:
            self.result.archives_pending += len(items)
        elif items:
            step = _Archiving(check_sources(ctx, items, self.writes), 0)
            self.archiving.append(step)
            for objects in archive_requests(step.sources):
                self.requests.append(_ArchiveRequest(step, objects))
                step.waiting += 1
            if step.waiting == 0:
                self._record_archives(step)

    def _record_archives(self, step: _Archiving) -> None:
        record_archives(self.ctx, step.sources, self.result)
        self.archiving.remove(step)

    def _finish(self) -> None:
        """After the last request: a run that stopped records what became of the rest and raises."""
        if self.stop is None:
            return
        reason, ids = self.stop.reason, self.ledger_ids
        # Verified copies never repointed keep their ETags, so the next run reuses them.
        skipped = {ids[h.id]: {"error": reason, "target_object_etag": c.etag} for h, c in self.copied}
        skipped.update({ids[handle_id]: {"error": reason} for handle_id in self.stopped_ids})
        skipped.update({ids[h.id]: {"error": reason} for h in self.pending})
        self.copied, self.pending = [], deque()
        with self.writes.exclusive():
            with self.ctx.repository.begin() as conn:
                ledger.record(conn, MoveState.FAILED, self._record_failed())
                ledger.record(conn, MoveState.SKIPPED, skipped)
            for step in list(self.archiving):
                # Archives that were answered are DONE; the rest stay REPOINTED for a later run.
                self._record_archives(step)
        raise self.stop

    def release(self) -> None:
        """Give back the claims of archive steps a failure left unrecorded."""
        with self.writes.exclusive():
            for step in self.archiving:
                release_sources(self.ctx, step.sources)


def copy_repoint_archive(
    ctx: MoveContext, movable: list[Handle], ledger_ids: dict[int, int], result: BundleResult
) -> None:
    """Copy (or reuse), verify, repoint and archive the bundle's movable handles, whose target keys
    this run has claimed; LeaseLost when the run must stop."""
    if not movable:
        return
    bundle = _Bundle(ctx, movable, ledger_ids, result)
    try:
        with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
            bundle.run(pool)
    finally:
        bundle.release()
