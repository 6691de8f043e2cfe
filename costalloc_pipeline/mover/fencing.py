"""The checks a run makes right before it acts: its lease and its project's target still hold
(in the caller's transaction), and which objects a handle of this or another stack still names."""

from __future__ import annotations

from sqlalchemy import Connection

from costalloc_pipeline.mover import lease
from costalloc_pipeline.mover.context import MoveContext
from costalloc_pipeline.mover.handles import referenced_objects
from costalloc_pipeline.placement import project_target

Object = tuple[str, str]


def fence(conn: Connection, ctx: MoveContext) -> None:
    """Renew the run's lease and check the project's target, in the caller's transaction."""
    if not lease.renew(conn, ctx.project_id, ctx.run_id, ctx.clock(), ctx.lease_seconds):
        raise lease.LeaseLost(f"run {ctx.run_id} no longer holds the project's lease; it stops")
    target = project_target(conn, ctx.project_id)
    if target != ctx.target:
        raise lease.LeaseLost(f"the project's target changed to {target.bucket}; the run stops")


def still_referenced(ctx: MoveContext, objects: set[Object], any_status: bool = False) -> set[Object]:
    """Objects a handle of this stack or of another one still names."""
    referenced: set[Object] = set()
    for engine in (ctx.repository, *ctx.other_repositories):
        with engine.connect() as conn:
            referenced |= referenced_objects(conn, objects, any_status)
    return referenced
