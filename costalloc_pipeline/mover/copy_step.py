"""Step 3 for each handle of a bundle: what to do at its target key, decided for the whole bundle
from what is really at the sources and targets (copy_plan.py), and carrying it out for one handle
(copier.py): copy, reuse, or fail, always verified against the handle."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

from costalloc_pipeline.mover import ledger
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.copier import (
    Copied,
    TargetConflict,
    VerificationFailed,
    copy_object,
    read_back_matches,
)
from costalloc_pipeline.mover.copy_plan import Action, CopyPlan, plan_copy
from costalloc_pipeline.mover.fencing import Object, WriteFence, still_referenced
from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.mover.keys import object_facts
from costalloc_pipeline.mover.objects import ObjectFacts, carries_archive_tag

TARGET_CONFLICT = "target conflict: "


def copy_plans(
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


def copy_one(
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
            return copy_one(ctx, pool, writes, handle, plan.otherwise, source)
    if plan.action is Action.REUSE:
        # An object tagged for expiry is an archive, never live data (I1): replaced by a fresh copy.
        if not carries_archive_tag(ctx.s3, ctx.target.bucket, key):
            assert plan.found_etag is not None
            # No request copied the source now, so S3 named no version of it.
            return Copied(plan.found_etag, None), True
        plan = CopyPlan(Action.COPY, replaces=plan.found_etag)
    copied = copy_object(ctx.s3, handle, source, ctx.target.bucket, ctx.copy, plan.replaces, pool, writes.before_write)
    return copied, False


def failure(error: Exception) -> str:
    prefix = TARGET_CONFLICT if isinstance(error, TargetConflict) else "copy failed: "
    return prefix + str(error)
