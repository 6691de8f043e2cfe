"""The repository row of a test's S3 file handle: one place, for the tests that write handles
straight into the database (the fault suite, the mover's tests, the randomized interleavings)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from costalloc_pipeline.db import new_etag, utcnow
from costalloc_pipeline.schema.repository import FileStatus, MetadataType


def s3_file_row(
    handle_id: int,
    bucket: str | None,
    key: str | None,
    body: bytes,
    *,
    name: str | None = None,
    storage_location_id: int | None = 1,
    metadata_type: str = MetadataType.S3.value,
    status: str = FileStatus.AVAILABLE.value,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """An AVAILABLE S3 handle whose size and MD5 are those of `body`, as an upload records them."""
    now = now or utcnow()
    return {
        "id": handle_id,
        "etag": new_etag(),
        "created_on": now,
        "created_by": 1,
        "updated_on": now,
        "metadata_type": metadata_type,
        "content_type": "application/octet-stream",
        "content_size": len(body),
        "content_md5": hashlib.md5(body).hexdigest(),
        "bucket_name": bucket,
        "name": name or f"file{handle_id}.bin",
        "key": key,
        "storage_location_id": storage_location_id,
        "is_preview": False,
        "status": status,
    }
