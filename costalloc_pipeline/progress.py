"""How far a project is from zero misplaced bytes, read from the live repository database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select, union

from costalloc_pipeline.misplaced import Placement
from costalloc_pipeline.schema.repository import (
    FileStatus,
    MetadataType,
    MoveState,
    NodeType,
    files,
    move_ledger,
    node,
    node_revision,
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


def _project_handle_ids(project_id: int):
    own = (
        select(node_revision.c.file_handle_id.label("id"))
        .join(node, node.c.id == node_revision.c.owner_node_id)
        .where(node.c.project_id == project_id, node.c.node_type == NodeType.FILE.value)
        .where(node_revision.c.file_handle_id.is_not(None))
    )
    previews = select(files.c.preview_id.label("id")).where(
        files.c.id.in_(own), files.c.preview_id.is_not(None)
    )
    return union(own, previews)


def _sharing_projects(conn: Connection, handle_ids: list[int], project_id: int) -> dict[int, set[int]]:
    """Other projects referencing each handle, directly or through a handle whose preview it is."""
    sharing: dict[int, set[int]] = {}
    for start in range(0, len(handle_ids), 1000):
        chunk = handle_ids[start : start + 1000]
        owner = files.alias("owner")
        direct = (
            select(node_revision.c.file_handle_id, node.c.project_id)
            .join(node, node.c.id == node_revision.c.owner_node_id)
            .where(node_revision.c.file_handle_id.in_(chunk), node.c.project_id != project_id)
        )
        as_preview = (
            select(owner.c.preview_id, node.c.project_id)
            .join(node_revision, node_revision.c.file_handle_id == owner.c.id)
            .join(node, node.c.id == node_revision.c.owner_node_id)
            .where(owner.c.preview_id.in_(chunk), node.c.project_id != project_id)
        )
        for handle_id, other in conn.execute(union(direct, as_preview)):
            sharing.setdefault(handle_id, set()).add(other)
    return sharing


def project_progress(conn: Connection, project_id: int, placement: Placement) -> Progress:
    target = placement.target_bucket(project_id)
    handle_ids = _project_handle_ids(project_id).subquery()
    in_managed_storage = (
        select(files.c.id, files.c.bucket_name, files.c.content_size)
        .where(files.c.id.in_(select(handle_ids.c.id)))
        .where(files.c.status == FileStatus.AVAILABLE.value)
        .where(files.c.metadata_type == MetadataType.S3.value)
        .where(files.c.bucket_name.in_(sorted(placement.managed_buckets)))
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
    sharing = _sharing_projects(conn, [row.id for row in misplaced_rows], project_id)
    conflicts = {
        handle_id
        for handle_id, others in sharing.items()
        if any(placement.target_bucket(other) != target for other in others)
    }
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
