"""Step 5: archive an old object that no AVAILABLE handle references any more.

The archive is a copy of the object onto itself in an archive storage class, tagged so that the
bucket's lifecycle rule expires it after the retention period. It must be a new object: lifecycle
expiry counts from the object's creation.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from costalloc_pipeline.mover.copier import head, multipart_copy

ARCHIVE_TAG_KEY = "costalloc:archived"
ARCHIVE_TAG_VALUE = "true"


def is_archived(s3: Any, bucket: str, key: str, storage_class: str) -> bool:
    found = head(s3, bucket, key)
    return found is not None and found.get("StorageClass") == storage_class


def archive_object(s3: Any, bucket: str, key: str, size: int | None, storage_class: str, options) -> None:
    """Idempotent: an object already archived (a resumed run) is left as it is."""
    tagging = f"{ARCHIVE_TAG_KEY}={ARCHIVE_TAG_VALUE}"
    try:
        if size is not None and size > options.multipart_threshold:
            multipart_copy(
                s3, bucket, key, bucket, size, options.part_size, StorageClass=storage_class, Tagging=tagging
            )
        else:
            s3.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                StorageClass=storage_class,
                MetadataDirective="COPY",
                TaggingDirective="REPLACE",
                Tagging=tagging,
            )
    except ClientError:
        # An archive class object cannot be copied again; that means an earlier attempt finished.
        if is_archived(s3, bucket, key, storage_class):
            return
        raise
