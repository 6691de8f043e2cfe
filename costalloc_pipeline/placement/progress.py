"""How far a project is from zero misplaced bytes, read from the live repository database."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, literal, select

from costalloc_pipeline.changes import associated_projects
from costalloc_pipeline.placement.rule import (
    Placement,
    live_condition,
    load_placement,
    project_handle_ids,
    referencing_projects,
    repository_references,
)
from costalloc_pipeline.schema.repository import (
    MoveState,
    files,
    move_ledger,
    node,
)


@dataclass(frozen=True)
class Progress:
    project_id: int
    target_bucket: str
    misplaced_files: int
    misplaced_bytes: int
    placed_files: int
    placed_bytes: int
    # Misplaced handles that another project, with another target, also references: never moved.
    conflict_files: int
    conflict_bytes: int
    moved_bytes: int
    # Misplaced handles whose last move attempt failed verification or copy: they need a person.
    failed_files: int

    @property
    def percent_done(self) -> float:
        total = self.placed_bytes + self.misplaced_bytes
        return 100.0 if total == 0 else round(100.0 * self.placed_bytes / total, 2)

    def after_moving(self, files: int, size: int) -> Progress:
        """This progress once `files` more handles of `size` bytes in all are in the target bucket:
        a run's estimate between bundles, without reading every handle of the project again."""
        return replace(
            self,
            misplaced_files=max(0, self.misplaced_files - files),
            misplaced_bytes=max(0, self.misplaced_bytes - size),
            placed_files=self.placed_files + files,
            placed_bytes=self.placed_bytes + size,
            moved_bytes=self.moved_bytes + size,
        )


# Bound parameters per statement of handle ids: well under SQLite's limit.
IDS_PER_QUERY = 1000


def _sizes(conn: Connection, handle_ids: Collection[int]) -> int:
    wanted = sorted(handle_ids)
    return sum(
        int(
            conn.execute(
                select(func.coalesce(func.sum(files.c.content_size), 0)).where(
                    files.c.id.in_(wanted[start : start + IDS_PER_QUERY])
                )
            ).scalar_one()
        )
        for start in range(0, len(wanted), IDS_PER_QUERY)
    )


def project_progress(conn: Connection, project_id: int, placement: Placement) -> Progress:
    """Set-based, so its cost follows the project's size and not a query per thousand handles: one
    pass sums the placed and misplaced handles, and only those that another project also references
    (usually none) come back to be judged as conflicts."""
    target = placement.target_bucket(project_id)
    # The project's handles joined as a derived table (each once: a UNION), not tested with IN:
    # MariaDB cannot semi-join an IN over a UNION, and ran it as a subquery per row of files.
    handles = project_handle_ids(repository_references().subquery(), files, project_id).subquery("project_handles")
    project_files = handles.join(files, files.c.id == handles.c.file_handle_id)
    live = live_condition(files, placement.managed_buckets)
    placed = files.c.bucket_name == target

    def counted(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    totals = conn.execute(
        select(
            counted(placed, literal(1)),
            counted(placed, func.coalesce(files.c.content_size, 0)),
            counted(~placed, literal(1)),
            counted(~placed, func.coalesce(files.c.content_size, 0)),
        )
        .select_from(project_files)
        .where(live)
    ).one()
    misplaced_ids = select(files.c.id).select_from(project_files).where(live, ~placed)
    # Who else references the misplaced handles, in the live repository (the replica may be stale).
    others = repository_references().where(node.c.project_id != project_id).subquery()
    sharing: dict[int, set[int]] = {}
    for handle_id, other in conn.execute(referencing_projects(others, files, misplaced_ids)):
        sharing.setdefault(handle_id, set()).add(other)
    conflicts = {handle_id for handle_id, projects in sharing.items() if placement.conflicting(project_id, projects)}
    moved_bytes = conn.execute(
        select(func.coalesce(func.sum(move_ledger.c.content_size), 0)).where(
            move_ledger.c.project_id == project_id,
            move_ledger.c.target_bucket == target,
            move_ledger.c.state.in_([MoveState.REPOINTED.value, MoveState.DONE.value]),
        )
    ).scalar_one()
    failed = set(
        conn.execute(
            select(move_ledger.c.file_handle_id).where(
                move_ledger.c.project_id == project_id,
                move_ledger.c.target_bucket == target,
                move_ledger.c.state == MoveState.FAILED.value,
                move_ledger.c.file_handle_id.in_(misplaced_ids),
            )
        ).scalars()
    )
    conflict_bytes = _sizes(conn, conflicts)
    return Progress(
        project_id=project_id,
        target_bucket=target,
        misplaced_files=int(totals[2]) - len(conflicts),
        misplaced_bytes=int(totals[3]) - conflict_bytes,
        placed_files=int(totals[0]),
        placed_bytes=int(totals[1]),
        conflict_files=len(conflicts),
        conflict_bytes=conflict_bytes,
        moved_bytes=int(moved_bytes),
        failed_files=len(failed - conflicts),
    )


def projects_progress(conn: Connection, project_ids: Iterable[int] | None = None) -> list[Progress]:
    """Each project's progress (by default every associated project's), against one placement read once."""
    placement = load_placement(conn)
    wanted = associated_projects(conn) if project_ids is None else project_ids
    return [project_progress(conn, project_id, placement) for project_id in wanted]
