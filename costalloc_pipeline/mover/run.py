"""A relocation run of one project: take the project's lease, finish what earlier runs left
(archives past their grace period), move the bundles, give the lease back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from costalloc_pipeline.mover import claims, lease
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.mover.plan import BundlePlan, Candidate, plan_bundles
from costalloc_pipeline.mover.resume import archive_due

# How often a run waiting for another run's lease looks again.
_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class BundleBounds:
    max_files: int
    max_bytes: int
    max_bundles: int


def begin(ctx: MoveContext, wait_seconds: float = 0.0) -> None:
    """Take the project's lease. A run toward another target (the project was reassigned) is
    waited for, up to `wait_seconds`: it stops at its next repoint and gives the lease back. A run
    toward the same target is doing this run's work: LeaseHeld at once."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            lease.acquire(ctx.repository, ctx.project_id, ctx.run_id, ctx.target.bucket, ctx.clock(), ctx.lease_seconds)
            return
        except lease.LeaseHeld:
            with ctx.repository.connect() as conn:
                current = lease.holder(conn, ctx.project_id)
            same_work = current is not None and current.target_bucket == ctx.target.bucket
            if same_work or time.monotonic() >= deadline:
                raise
            time.sleep(_POLL_SECONDS)


def end(ctx: MoveContext) -> None:
    """Give back the run's claims and lease (a run that dies leaves them to expire)."""
    claims.release_run(ctx.repository, ctx.run_id)
    lease.release(ctx.repository, ctx.project_id, ctx.run_id)


def plan(ctx: MoveContext, candidates: Sequence[Candidate], bounds: BundleBounds) -> tuple[BundleResult, BundlePlan]:
    """With the lease held: archive what is due, then split the candidates into bundles."""
    resumed = archive_due(ctx, ctx.project_id)
    return resumed, plan_bundles(candidates, bounds.max_files, bounds.max_bytes, bounds.max_bundles)


def relocate(
    ctx: MoveContext, candidates: Sequence[Candidate], bounds: BundleBounds, wait_seconds: float = 0.0
) -> BundleResult:
    """The whole run in this process (the Dagster job runs the same steps as separate ops)."""
    begin(ctx, wait_seconds)
    try:
        total, bundles = plan(ctx, candidates, bounds)
        for bundle in bundles.bundles:
            result = move_bundle(ctx, bundle.handle_ids)
            total = total.merge(result)
            if result.stopped:
                break
        return total
    finally:
        end(ctx)
