"""Step 1: re-read handles from the repository (the replica may be stale) and decide which move."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, tuple_

from costalloc_pipeline.placement.rule import Placement, Target
from costalloc_pipeline.schema.repository import FileStatus, files


@dataclass(frozen=True)
class Handle:
    id: int
    etag: str
    bucket: str | None
    key: str | None
    size: int | None
    md5: str | None
    storage_location_id: int | None
    status: str
    metadata_type: str


def read_handles(conn: Connection, handle_ids: Sequence[int]) -> list[Handle]:
    rows = conn.execute(
        select(
            files.c.id,
            files.c.etag,
            files.c.bucket_name,
            files.c.key,
            files.c.content_size,
            files.c.content_md5,
            files.c.storage_location_id,
            files.c.status,
            files.c.metadata_type,
        ).where(files.c.id.in_(list(handle_ids)))
    )
    return [Handle(*row) for row in rows]


def skip_reason(
    handle: Handle, project_id: int, referencing: Iterable[int], placement: Placement, target: Target
) -> str | None:
    """Why a handle must not be moved to `target` by a run of `project_id` now, or None.

    The placement rule decides, on the live repository: the handle must still be one of the
    project's, and every project that references it must want it in the target bucket."""
    if not placement.is_managed(handle.metadata_type, handle.bucket):
        return "not in repository-managed storage"
    if handle.status != FileStatus.AVAILABLE.value:
        return f"status is {handle.status}"
    projects = set(referencing)
    if project_id not in projects:
        return "no longer a handle of the project"
    if placement.conflicting(project_id, projects):
        return "conflict: another project that uses it wants it in another bucket"
    if placement.belongs_in(projects) != target.bucket:
        return "the project's target changed"
    if handle.bucket == target.bucket:
        return "already in the target bucket"
    return None


def row_problem(handle: Handle) -> str | None:
    """What makes a misplaced handle impossible to move safely: it is reported, the rest moves."""
    if not handle.key:
        return "the handle has no key"
    if handle.size is None:
        return "the handle records no size, so a copy could not be verified"
    return None


def referenced_objects(
    conn: Connection, objects: Iterable[tuple[str, str]], any_status: bool = False
) -> set[tuple[str, str]]:
    """The (bucket, key) pairs still referenced by an AVAILABLE handle of this repository (by any
    handle at all with `any_status`: an UNLINKED handle can be restored by the repository)."""
    wanted = list(set(objects))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 500):
        query = select(files.c.bucket_name, files.c.key).where(
            tuple_(files.c.bucket_name, files.c.key).in_(wanted[start : start + 500])
        )
        if not any_status:
            query = query.where(files.c.status == FileStatus.AVAILABLE.value)
        found.update((bucket, key) for bucket, key in conn.execute(query))
    return found
