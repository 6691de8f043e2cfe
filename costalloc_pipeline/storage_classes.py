"""S3 storage classes the mover archives sources to, shared by the settings, the mover and the audit."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3.literals import StorageClassType

# The classes COSTALLOC_ARCHIVE_STORAGE_CLASS may name; an object in one of them is an archive, not a live copy.
ARCHIVE_STORAGE_CLASSES: frozenset[StorageClassType] = frozenset({"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"})
DEFAULT_ARCHIVE_STORAGE_CLASS: StorageClassType = "GLACIER"
