"""How an old object is archived, chosen per bucket from the bucket's state (DESIGN.md section 4 step 5).

- COPY: a copy of the object onto itself in the archive class, tagged so that the bucket's rule
  expires it after the retention period. Expiry counts from an object's creation, so the archive
  must be a new object: every byte is copied a second time.
- DELETE: on a bucket whose versioning is enabled, one DeleteObject. The old version becomes
  noncurrent, and costalloc's noncurrent-version rule moves it to the archive class and expires it
  the retention period after that moment. No byte is copied again, and the archive is found by
  key and version id.

DELETE is chosen only where it keeps I3: versioning is Enabled (on an unversioned or suspended
bucket a DeleteObject may remove the bytes for good) and the bucket's rules keep every noncurrent
version for the retention period (costalloc's rule is there and no rule expires one earlier). A
run reads a bucket's state again once what it read is `STATE_SECONDS` old: a bucket whose
versioning was suspended meanwhile gets copies again, and a run does not pay two requests for
every batch of archives.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.buckets import VERSIONING_ENABLED, bucket_rules, keeps_noncurrent_versions

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# How long a run trusts what it read of a bucket's versioning and rules.
STATE_SECONDS = 60


class ArchiveMethod(str, enum.Enum):
    COPY = "copy"
    DELETE = "delete"


def choose(mode: str, versioning: str | None, rules: Iterable[Mapping[str, Any]], retention_days: int) -> ArchiveMethod:
    """Pure: the method for a bucket, from COSTALLOC_ARCHIVE_MODE, its versioning status and its
    lifecycle rules."""
    if mode == "copy" or versioning != VERSIONING_ENABLED:
        return ArchiveMethod.COPY
    return ArchiveMethod.DELETE if keeps_noncurrent_versions(rules, retention_days) else ArchiveMethod.COPY


def bucket_method(s3: S3Client, bucket: str, mode: str, retention_days: int) -> ArchiveMethod:
    """The method for archives in `bucket` now. A bucket whose state cannot be read (S3 refused)
    gets copies: they keep I3 whatever the bucket's versioning."""
    if mode == "copy":
        return ArchiveMethod.COPY
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if versioning != VERSIONING_ENABLED:
            return ArchiveMethod.COPY
        return choose(mode, versioning, bucket_rules(s3, bucket), retention_days)
    except (ClientError, BotoCoreError):
        return ArchiveMethod.COPY


class BucketStates:
    """The archive method of each bucket for one run, read again once it is STATE_SECONDS old."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read: dict[str, tuple[dt.datetime, ArchiveMethod]] = {}

    def method(
        self, s3: S3Client, bucket: str, mode: str, retention_days: int, now: Callable[[], dt.datetime]
    ) -> ArchiveMethod:
        with self._lock:
            known = self._read.get(bucket)
            at = now()
            if known is not None and (at - known[0]).total_seconds() < STATE_SECONDS:
                return known[1]
        method = bucket_method(s3, bucket, mode, retention_days)
        with self._lock:
            self._read[bucket] = (at, method)
        return method
