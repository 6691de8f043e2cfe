"""One bundle through the whole protocol, in the order that keeps invariants I1-I6.

1. Re-read the handles; the placement rule, on the live repository, says which still move.
2. Write the ledger, claim every target key (no other run writes there meanwhile; two sources of
   this run never share one), and look at what is really at each source and target (objects.py).
3. Copy or reuse, verified against the handle (copier.py).
4. Repoint, in one transaction that first renews the run's lease and checks the project's target
   and the claims: a run that lost its lease or whose target changed stops here.
5. Archive the old objects once their grace period is over and nothing references them (here at
   once when the grace is 0, else by a later run or `costalloc resume`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor

from costalloc_pipeline.db import new_etag
from costalloc_pipeline.mover import claims, lease, ledger
from costalloc_pipeline.mover.archive import ArchiveItem, archive_sources
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.copier import (
    Copied,
    S3Errors,
    TargetConflict,
    VerificationFailed,
    copy_object,
    read_back_matches,
)
from costalloc_pipeline.mover.copy_plan import Action, CopyPlan, plan_copy
from costalloc_pipeline.mover.fencing import Object, WriteFence, fence, still_referenced
from costalloc_pipeline.mover.handles import (
    Handle,
    read_handles,
    row_problem,
    skip_reason,
)
from costalloc_pipeline.mover.keys import already_at_target, object_facts, one_source_per_key
from costalloc_pipeline.mover.objects import (
    ObjectFacts,
    carries_archive_tag,
)
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.mover.repoint import Repoint, repoint
from costalloc_pipeline.placement.rule import live_references
from costalloc_pipeline.schema.repository import MoveState

TARGET_CONFLICT = "target conflict: "


def _copy_plans(
    ctx: MoveContext, handles: Sequence[Handle]
) -> tuple[dict[int, CopyPlan], dict[Object, ObjectFacts | None]]:
    sources, targets = object_facts(ctx, handles)
    occupied = {(ctx.target.bucket, key) for key, found in targets.items() if found is not None}
    with ctx.repository.connect() as conn:
        verified = ledger.verified_copies(conn, handles, ctx.target.bucket)
        own = ledger.own_copies(conn, ctx.target.bucket, [key for _, key in occupied])
    referenced = still_referenced(ctx, occupied, any_status=True)
    plans = {
        h.id: plan_copy(
            h,
            sources[(h.bucket or "", h.key or "")],
            targets[h.key or ""],
            verified[h.id],
            own.get(h.key or "", set()),
            (ctx.target.bucket, h.key or "") in referenced,
        )
        for h in handles
    }
    return plans, sources


def _copy_one(
    ctx: MoveContext, pool: Executor, writes: WriteFence, handle: Handle, plan: CopyPlan, source: ObjectFacts | None
) -> tuple[Copied, bool]:
    """Copy (or reuse) one handle's object; (the verified copy, reused)."""
    if plan.action is Action.FAIL:
        raise VerificationFailed(plan.reason)
    if plan.action is Action.CONFLICT:
        raise TargetConflict(plan.reason)
    assert source is not None
    key = handle.key or ""
    if plan.action is Action.READ_BACK:
        if read_back_matches(ctx.s3, handle, source, ctx.target.bucket):
            plan = CopyPlan(Action.REUSE, found_etag=plan.found_etag)
        else:
            assert plan.otherwise is not None
            return _copy_one(ctx, pool, writes, handle, plan.otherwise, source)
    if plan.action is Action.REUSE:
        # An object tagged for expiry is an archive, never live data (I1): replaced by a fresh copy.
        if not carries_archive_tag(ctx.s3, ctx.target.bucket, key):
            assert plan.found_etag is not None
            # No request copied the source now, so S3 named no version of it.
            return Copied(plan.found_etag, None), True
        plan = CopyPlan(Action.COPY, replaces=plan.found_etag)
    copied = copy_object(ctx.s3, handle, source, ctx.target.bucket, ctx.copy, plan.replaces, pool, writes.before_write)
    return copied, False


def _failure(error: Exception) -> str:
    prefix = TARGET_CONFLICT if isinstance(error, TargetConflict) else "copy failed: "
    return prefix + str(error)


def move_bundle(ctx: MoveContext, handle_ids: Sequence[int]) -> BundleResult:
    result = BundleResult()
    try:
        _move(ctx, handle_ids, result)
    except lease.LeaseLost as stop:
        result.stopped = stop.reason
    return result


def _move(ctx: MoveContext, handle_ids: Sequence[int], result: BundleResult) -> None:
    with ctx.repository.begin() as conn:
        fence(conn, ctx)
    with ctx.repository.connect() as conn:
        handles = read_handles(conn, handle_ids)
        references = live_references(conn, [h.id for h in handles])
    result.skipped["no longer in the repository"] += len(set(handle_ids)) - len(handles)
    candidates: list[Handle] = []
    odd: dict[int, str] = {}
    for handle in handles:
        reason = skip_reason(handle, ctx.project_id, references[handle.id], ctx.placement, ctx.target)
        if reason is not None:
            result.skipped[reason] += 1
            continue
        problem = row_problem(handle)
        if problem is not None:
            odd[handle.id] = problem
        candidates.append(handle)
    sound = [h for h in candidates if h.id not in odd]
    movable, waiting = one_source_per_key(sound, already_at_target(ctx, sound))
    result.skipped["another source of this run goes to the same target key first"] += len(waiting)
    if not candidates:
        return

    now = ctx.clock()
    waiting_ids = {h.id for h in waiting}
    started = [h for h in candidates if h.id not in waiting_ids]
    with ctx.repository.begin() as conn:
        stale = ledger.unfinished_attempts(conn, [h.id for h in started], lease.live_runs(conn, now))
        ledger_ids = ledger.start(conn, ctx.run_id, ctx.project_id, started, ctx.target)
        ledger.supersede(conn, stale)
        ledger.record(conn, MoveState.FAILED, {ledger_ids[i]: {"error": why} for i, why in odd.items()})
    result.failed.update(odd)
    if not movable:
        return

    refusals = claims.claim(
        ctx.repository,
        ctx.run_id,
        [claims.ClaimRequest(ctx.target.bucket, h.key or "", h.bucket) for h in movable],
        now,
        ctx.lease_seconds,
    )
    claimed = {(ctx.target.bucket, h.key or "") for h in movable if refusals[(ctx.target.bucket, h.key or "")] is None}
    try:
        busy = {
            h.id: refusals[(ctx.target.bucket, h.key or "")]
            for h in movable
            if (ctx.target.bucket, h.key) not in claimed
        }
        with ctx.repository.begin() as conn:
            ledger.record(
                conn,
                MoveState.SKIPPED,
                {ledger_ids[i]: {"error": f"retried next run: {why}"} for i, why in busy.items()},
            )
        result.skipped["target key claimed by another run"] += len(busy)
        _copy_and_repoint(ctx, [h for h in movable if h.id not in busy], ledger_ids, result)
    finally:
        with ctx.repository.begin() as conn:
            claims.release(conn, ctx.run_id, claimed)


def _copy_and_repoint(
    ctx: MoveContext, movable: list[Handle], ledger_ids: dict[int, int], result: BundleResult
) -> None:
    if not movable:
        return
    plans, sources = _copy_plans(ctx, movable)

    made: dict[int, str] = {}
    writes = WriteFence(ctx)

    def source_etag(handle: Handle) -> str:
        found = sources[(handle.bucket or "", handle.key or "")]
        # A copy is planned only from a source that was looked at and holds the handle's bytes.
        assert found is not None
        return found.etag

    def copy(handle: Handle, pool: Executor) -> tuple[Handle, tuple[Copied, bool] | str | lease.LeaseLost]:
        try:
            return handle, _copy_one(
                ctx, pool, writes, handle, plans[handle.id], sources[(handle.bucket or "", handle.key or "")]
            )
        except S3Errors as error:
            if isinstance(error, VerificationFailed) and error.made_etag:
                made[handle.id] = error.made_etag
            return handle, _failure(error)
        except lease.LeaseLost as stop:
            return handle, stop

    with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
        outcomes = list(pool.map(lambda handle: copy(handle, pool), movable))
    copied = [(h, outcome) for h, outcome in outcomes if isinstance(outcome, tuple)]
    failed = {h.id: outcome for h, outcome in outcomes if isinstance(outcome, str)}
    stopped = {h.id: outcome for h, outcome in outcomes if isinstance(outcome, lease.LeaseLost)}
    lost_lease = next(iter(stopped.values()), None)
    result.failed.update(failed)
    result.reused_copies = sum(1 for _, (_, reused) in copied if reused)
    with ctx.repository.begin() as conn:
        ledger.record(
            conn,
            MoveState.FAILED,
            {ledger_ids[i]: {"error": e, "target_object_etag": made.get(i)} for i, e in failed.items()},
        )
        # The copy's ETag is recorded even when the run stops now: the next run knows the object as
        # costalloc's own. A run that stops repoints none of its copies: they are SKIPPED too.
        copied_state, why = (
            (MoveState.COPIED, {}) if lost_lease is None else (MoveState.SKIPPED, {"error": lost_lease.reason})
        )
        ledger.record(
            conn,
            copied_state,
            {
                ledger_ids[h.id]: {
                    "target_object_etag": made.etag,
                    "source_object_etag": source_etag(h),
                    "source_version_id": made.source_version_id,
                    **why,
                }
                for h, (made, _) in copied
            },
        )
        ledger.record(conn, MoveState.SKIPPED, {ledger_ids[i]: {"error": lost.reason} for i, lost in stopped.items()})
    if lost_lease is not None:
        raise lost_lease

    moves = [Repoint(h.id, h.etag, new_etag()) for h, _ in copied]
    repointed_on = ctx.clock()
    try:
        with ctx.repository.begin() as conn:
            fence(conn, ctx)
            still_claimed = claims.held(conn, ctx.run_id, {(ctx.target.bucket, h.key or "") for h, _ in copied})
            ours = {h.id for h, _ in copied if (ctx.target.bucket, h.key or "") in still_claimed}
            repointed = repoint(conn, [m for m in moves if m.handle_id in ours], ctx.target)
            ledger.record(
                conn,
                MoveState.REPOINTED,
                {
                    ledger_ids[m.handle_id]: {"etag_after": m.etag_after, "repointed_on": repointed_on}
                    for m in moves
                    if m.handle_id in repointed
                },
            )
            ledger.record(
                conn,
                MoveState.SKIPPED,
                {
                    ledger_ids[m.handle_id]: {"error": "handle changed during the move; retried next run"}
                    for m in moves
                    if m.handle_id not in repointed
                },
            )
    except lease.LeaseLost as stop:
        with ctx.repository.begin() as conn:
            ledger.record(conn, MoveState.SKIPPED, {ledger_ids[m.handle_id]: {"error": stop.reason} for m in moves})
        raise
    result.changed_meanwhile = len(moves) - len(repointed)
    moved = [h for h, _ in copied if h.id in repointed]
    result.moved_files = len(moved)
    result.moved_bytes = sum(h.size or 0 for h in moved)
    items = [
        ArchiveItem(ledger_ids[h.id], h.bucket or "", h.key or "", h.size, source_etag(h), made.source_version_id)
        for h, (made, _) in copied
        if h.id in repointed
    ]
    if ctx.archive_grace_seconds == 0:
        archive_sources(ctx, items, result)
    else:
        result.archives_pending += len(items)
