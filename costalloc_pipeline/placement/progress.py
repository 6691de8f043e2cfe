"""How far a project is from zero misplaced bytes, read from the live repository database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy import Connection, func, select

from costalloc_pipeline.changes import associated_projects
from costalloc_pipeline.placement.rule import (
    Placement,
    live_condition,
    live_references,
    load_placement,
    project_handle_ids,
    repository_references,
)
from costalloc_pipeline.schema.repository import (
    MoveState,
    files,
    move_ledger,
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


def project_progress(conn: Connection, project_id: int, placement: Placement) -> Progress:
    target = placement.target_bucket(project_id)
    handle_ids = project_handle_ids(repository_references().subquery(), files, project_id)
    in_managed_storage = (
        select(files.c.id, files.c.bucket_name, files.c.content_size)
        .where(files.c.id.in_(handle_ids), live_condition(files, placement.managed_buckets))
        .subquery()
    )
    placed = conn.execute(
        select(func.count(), func.coalesce(func.sum(in_managed_storage.c.content_size), 0)).where(
            in_managed_storage.c.bucket_name == target
        )
    ).one()
    misplaced_rows = conn.execute(
        select(in_managed_storage.c.id, in_managed_storage.c.content_size).where(
            in_managed_storage.c.bucket_name != target
        )
    ).all()
    sharing = live_references(conn, [row.id for row in misplaced_rows])
    conflicts = {handle_id for handle_id, others in sharing.items() if placement.conflicting(project_id, others)}
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
            )
        ).scalars()
    )
    still_misplaced = {row.id for row in misplaced_rows} - conflicts
    return Progress(
        project_id=project_id,
        target_bucket=target,
        misplaced_files=sum(1 for row in misplaced_rows if row.id not in conflicts),
        misplaced_bytes=sum(row.content_size or 0 for row in misplaced_rows if row.id not in conflicts),
        placed_files=placed[0],
        placed_bytes=int(placed[1]),
        conflict_files=len(conflicts),
        conflict_bytes=sum(row.content_size or 0 for row in misplaced_rows if row.id in conflicts),
        moved_bytes=int(moved_bytes),
        failed_files=len(failed & still_misplaced),
    )


def projects_progress(conn: Connection, project_ids: Iterable[int] | None = None) -> list[Progress]:
    """Each project's progress (by default every associated project's), against one placement read once."""
    placement = load_placement(conn)
    wanted = associated_projects(conn) if project_ids is None else project_ids
    return [project_progress(conn, project_id, placement) for project_id in wanted]
