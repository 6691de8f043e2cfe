"""Step 5: archive an old object that nothing references any more.

The archive is a copy of the object onto itself in an archive storage class, tagged so that the
bucket's lifecycle rule expires it after the retention period. It must be a new object: lifecycle
expiry counts from the object's creation. A large object is archived part by part over its real
length (its HEAD), never the recorded size, so nothing is truncated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from costalloc_pipeline.buckets import ARCHIVE_TAG
from costalloc_pipeline.mover.copier import CopyOptions, multipart_copy
from costalloc_pipeline.mover.objects import head

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARCHIVE_TAGGING = f"{ARCHIVE_TAG[0]}={ARCHIVE_TAG[1]}"


def is_archived(s3: S3Client, bucket: str, key: str, storage_class: str) -> bool:
    found = head(s3, bucket, key)
    return found is not None and found.get("StorageClass") == storage_class


def archive_object(
    s3: S3Client, bucket: str, key: str, size: int | None, storage_class: str, options: CopyOptions
) -> None:
    """Idempotent: an object already archived (a resumed run) is left as it is. `size` (the
    recorded one) only chooses the path; the multipart path copies what is really there."""
    try:
        if size is None or size > options.multipart_threshold:
            multipart_copy(s3, bucket, key, bucket, options.part_size, StorageClass=storage_class, Tagging=ARCHIVE_TAGGING)
        else:
            s3.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                StorageClass=storage_class,
                MetadataDirective="COPY",
                TaggingDirective="REPLACE",
                Tagging=ARCHIVE_TAGGING,
            )
    except ClientError:
        # An archive class object cannot be copied again; that means an earlier attempt finished.
        if is_archived(s3, bucket, key, storage_class):
            return
        raise
