"""Step 1: re-read handles from the repository (the replica may be stale) and decide which move."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, tuple_

from costalloc_pipeline.schema.repository import FileStatus, MetadataType, files


@dataclass(frozen=True)
class Handle:
    id: int
    etag: str
    bucket: str
    key: str
    size: int | None
    md5: str | None
    storage_location_id: int | None
    status: str
    metadata_type: str


@dataclass(frozen=True)
class Target:
    bucket: str
    storage_location_id: int


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


def skip_reason(handle: Handle, target: Target, managed_buckets: frozenset[str]) -> str | None:
    """Why a handle must not be moved now, or None when it is still misplaced."""
    if handle.metadata_type != MetadataType.S3.value or handle.bucket not in managed_buckets:
        return "not in repository-managed storage"
    if handle.status != FileStatus.AVAILABLE.value:
        return f"status is {handle.status}"
    if handle.bucket == target.bucket:
        return "already in the target bucket"
    return None


def referenced_objects(conn: Connection, objects: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (bucket, key) pairs still referenced by an AVAILABLE handle of this repository."""
    wanted = list(set(objects))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            select(files.c.bucket_name, files.c.key)
            .where(tuple_(files.c.bucket_name, files.c.key).in_(chunk))
            .where(files.c.status == FileStatus.AVAILABLE.value)
        )
        found.update((bucket, key) for bucket, key in rows)
    return found
