"""One bundle through the whole protocol, in the order that keeps invariants I1-I6.

1. Re-read the handles; the placement rule, on the live repository, says which still move.
2. Write the ledger, claim every target key (no other run writes there meanwhile; two sources of
   this run never share one), and look at what is really at each source and target (objects.py).
3. Copy or reuse, verified against the handle (copy_step.py, copier.py).
4. Repoint, in batches, each in one transaction that first renews the run's lease and checks the
   project's target and the claims: a run that lost its lease or whose target changed stops here.
5. Archive the old objects once their grace period is over and nothing references them (here at
   once when the grace is 0, else by a later run or `costalloc resume`).

Steps 3 to 5 overlap: the bundle goes on copying while earlier copies are repointed and archived
(pipeline.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from costalloc_pipeline.mover import claims, lease, ledger
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.fencing import fence
from costalloc_pipeline.mover.handles import (
    Handle,
    read_handles,
    row_problem,
    skip_reason,
)
from costalloc_pipeline.mover.keys import already_at_target, one_source_per_key
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.mover.pipeline import copy_repoint_archive
from costalloc_pipeline.placement.rule import live_references
from costalloc_pipeline.schema.repository import MoveState


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
        if busy:
            with ctx.repository.begin() as conn:
                ledger.record(
                    conn,
                    MoveState.SKIPPED,
                    {ledger_ids[i]: {"error": f"retried next run: {why}"} for i, why in busy.items()},
                )
        result.skipped["target key claimed by another run"] += len(busy)
        copy_repoint_archive(ctx, [h for h in movable if h.id not in busy], ledger_ids, result)
    finally:
        with ctx.repository.begin() as conn:
            claims.release(conn, ctx.run_id, claimed)
