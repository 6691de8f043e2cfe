"""Finish the moves the ledger shows as interrupted, of runs that are over (a run still holding
its project's lease finishes its own), each project under its lease like a relocation run:

- Repointed but not archived (REPOINTED), past the grace period: the archive step, if nothing
  here or in another stack still references the source.
- Started or copied but not repointed (STARTED, COPIED): the move again, toward the project's
  target bucket; a copy already verified in place is reused, not made again.
- An interrupted attempt that is no longer wanted (the project's target bucket changed, or the
  handle is no longer to be moved) is closed as SKIPPED with the reason; the next run moves the
  handle wherever it now belongs.

`costalloc resume` and the daily `finish_moves` job run this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, new_etag, utcnow
from costalloc_pipeline.mover import lease, ledger, run
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.mover.context import Clock, MoveContext, move_context
from costalloc_pipeline.mover.outcome import BundleResult
from costalloc_pipeline.mover.resume import archive_due
from costalloc_pipeline.naming import format_entity_id
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.schema.repository import MoveState, move_ledger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TARGET_CHANGED = "the project's target bucket changed; the next run moves the handle to {bucket}"
NOT_TO_MOVE = "the handle is no longer to be moved (already placed, changed or no longer AVAILABLE)"


@dataclass(frozen=True)
class Interrupted:
    """A ledger row left STARTED or COPIED by a crash."""

    ledger_id: int
    project_id: int
    file_handle_id: int
    target_bucket: str


@dataclass
class ProjectPlan:
    project_id: int
    target_bucket: str
    # Handles whose interrupted move still goes to the project's target bucket: moved again.
    move_again: list[int] = field(default_factory=list)
    # Ledger rows closed without moving, with the reason.
    close: dict[int, str] = field(default_factory=dict)


def plan_resume(
    interrupted: Iterable[Interrupted], projects: Iterable[int], target_of: Callable[[int], str]
) -> list[ProjectPlan]:
    """Pure: per project (every project with an interrupted row), what to move again and what to close."""
    plans = {project_id: ProjectPlan(project_id, target_of(project_id)) for project_id in set(projects)}
    for row in interrupted:
        plan = plans.setdefault(row.project_id, ProjectPlan(row.project_id, target_of(row.project_id)))
        if row.target_bucket == plan.target_bucket:
            if row.file_handle_id not in plan.move_again:
                plan.move_again.append(row.file_handle_id)
        else:
            plan.close[row.ledger_id] = TARGET_CHANGED.format(bucket=plan.target_bucket)
    return [plans[project_id] for project_id in sorted(plans)]


def interrupted_moves(
    repository: Engine, project_id: int | None, now: dt.datetime, grace_seconds: int
) -> tuple[list[Interrupted], set[int]]:
    """STARTED/COPIED rows of runs that are over, and the projects with REPOINTED rows past their
    grace period (archives that are due)."""
    with repository.begin() as conn:
        live = sorted(lease.live_runs(conn, now))
        unfinished = select(
            move_ledger.c.id, move_ledger.c.project_id, move_ledger.c.file_handle_id, move_ledger.c.target_bucket
        ).where(move_ledger.c.state.in_(ledger.UNFINISHED), move_ledger.c.run_id.not_in(live))
        repointed = (
            select(move_ledger.c.project_id)
            .where(
                move_ledger.c.state == MoveState.REPOINTED.value,
                now - dt.timedelta(seconds=grace_seconds) >= ledger.REPOINTED_ON,
            )
            .distinct()
        )
        if project_id is not None:
            unfinished = unfinished.where(move_ledger.c.project_id == project_id)
            repointed = repointed.where(move_ledger.c.project_id == project_id)
        rows = [Interrupted(*row) for row in conn.execute(unfinished.order_by(move_ledger.c.id))]
        projects = set(conn.execute(repointed).scalars())
    return rows, projects


def _close(repository: Engine, reasons: dict[int, str]) -> None:
    with repository.begin() as conn:
        ledger.record(conn, MoveState.SKIPPED, {ledger_id: {"error": reason} for ledger_id, reason in reasons.items()})


def _still_unfinished(repository: Engine, ledger_ids: Sequence[int]) -> list[int]:
    with repository.connect() as conn:
        return list(
            conn.execute(
                select(move_ledger.c.id).where(
                    move_ledger.c.id.in_(ledger_ids), move_ledger.c.state.in_(ledger.UNFINISHED)
                )
            ).scalars()
        )


@dataclass(frozen=True)
class ProjectOutcome:
    project_id: int
    archived: BundleResult
    moved: BundleResult
    closed: int
    # Why the project was left alone (another run holds its lease), or "".
    busy: str = ""

    def summary(self) -> str:
        archived, moved = self.archived, self.moved
        if self.busy:
            return f"{format_entity_id(self.project_id)}: left alone, {self.busy}"
        line = (
            f"{format_entity_id(self.project_id)}: archived {archived.archived_objects} sources, kept "
            f"{archived.sources_still_referenced} still referenced, moved {moved.moved_files} files "
            f"({moved.reused_copies} verified copies reused), closed {self.closed} stale ledger rows"
        )
        if moved.failed:
            line += f", {len(moved.failed)} failed (first: {', '.join(map(str, list(moved.failed)[:10]))})"
        return line


def resume_project(ctx: MoveContext, plan: ProjectPlan, interrupted: Sequence[Interrupted]) -> ProjectOutcome:
    try:
        run.begin(ctx)
    except lease.LeaseHeld as held:
        return ProjectOutcome(plan.project_id, BundleResult(), BundleResult(), 0, held.reason)
    try:
        archived = archive_due(ctx, plan.project_id)
        moved = move_bundle(ctx, plan.move_again) if plan.move_again else BundleResult()
        # A move that went again superseded its interrupted row; a row still open was not moved again.
        retried = [row.ledger_id for row in interrupted if row.file_handle_id in plan.move_again]
        close = {**plan.close, **dict.fromkeys(_still_unfinished(ctx.repository, retried), NOT_TO_MOVE)}
        _close(ctx.repository, close)
    finally:
        run.end(ctx)
    return ProjectOutcome(plan.project_id, archived, moved, len(close))


def resume(settings: Settings, s3: S3Client, project_id: int | None, clock: Clock = utcnow) -> list[ProjectOutcome]:
    """Finish every interrupted move of runs that are over (of one project, or of all)."""
    repository = engine_for(settings.repository_url)
    rows, repointed_projects = interrupted_moves(repository, project_id, clock(), settings.archive_grace_seconds)
    placement = load_placement(repository)
    plans = plan_resume(rows, repointed_projects, placement.target_bucket)
    return [
        resume_project(
            move_context(settings, repository, s3, plan.project_id, f"resume-{new_etag()}", clock),
            plan,
            [row for row in rows if row.project_id == plan.project_id],
        )
        for plan in plans
    ]


def left_interrupted(repository: Engine, project_id: int | None, grace_seconds: int) -> set[int]:
    """Projects that still have interrupted moves of runs that are over, or archives that are due."""
    unfinished, repointed_projects = interrupted_moves(repository, project_id, utcnow(), grace_seconds)
    return {row.project_id for row in unfinished} | repointed_projects


def waiting_archives(repository: Engine, project_id: int | None, grace_seconds: int) -> int:
    """Sources kept live because their grace period is not over yet."""
    query = select(func.count()).where(
        move_ledger.c.state == MoveState.REPOINTED.value,
        utcnow() - dt.timedelta(seconds=grace_seconds) < ledger.REPOINTED_ON,
    )
    if project_id is not None:
        query = query.where(move_ledger.c.project_id == project_id)
    with repository.connect() as conn:
        return int(conn.execute(query).scalar_one())
