"""Objects and bytes of a bucket by storage class, from S3 itself (`costalloc storage --from-s3`).

ListObjectsV2 lists current objects only: the noncurrent versions a versioned bucket keeps as
archives are not in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.billing.aws import describe
from costalloc_pipeline.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3 leaves StorageClass out of a listing's entry for no class in particular; it is STANDARD then.
_UNSTATED_CLASS = "STANDARD"


def bucket_classes(s3: S3Client, bucket: str) -> dict[str, tuple[int, int]]:
    """Every object of the bucket, counted by storage class: class -> (objects, bytes). In a
    versioned bucket every version is billed: the noncurrent ones (archives by DeleteObject) too."""
    counts: dict[str, tuple[int, int]] = {}
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for item in page.get("Versions", []):
                storage_class = str(item.get("StorageClass") or _UNSTATED_CLASS)
                objects, size = counts.get(storage_class, (0, 0))
                counts[storage_class] = (objects + 1, size + int(item.get("Size", 0)))
    except (ClientError, BotoCoreError) as error:
        raise Unavailable(f"S3 refused to list bucket {bucket}: {describe(error)}") from None
    return counts
