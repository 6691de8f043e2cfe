"""How an old object is archived, chosen per bucket from the bucket's state (DESIGN.md section 4 step 5),
and the archive by delete itself (archive.py makes the archive copies).

- COPY: a copy of the object onto itself in the archive class, tagged so that the bucket's rule
  expires it after the retention period. Expiry counts from an object's creation, so the archive
  must be a new object: every byte is copied a second time.
- DELETE: on a bucket whose versioning is enabled, a delete (one DeleteObjects request for a batch
  of old objects). The old version becomes noncurrent, and costalloc's noncurrent-version rule
  moves it to the archive class and expires it the retention period after that moment. No byte is
  copied again, and the archive is found by key and version id.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.buckets import VERSIONING_ENABLED, bucket_rules, keeps_noncurrent_versions
from costalloc_pipeline.mover.objects import head, stat_objects, unquote

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

# How long a run trusts what it read of a bucket's versioning and rules.
STATE_SECONDS = 60
# A conditional delete that found another object at the key (412), or none at all (404).
_NOT_THAT_OBJECT = ("PreconditionFailed", "412", "NoSuchKey", "404")
SOURCE_REPLACED = (
    "the key holds other bytes since the move, named by no handle: left live; the moved version is noncurrent"
)


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


@dataclass(frozen=True)
class ArchivePlan:
    method: ArchiveMethod
    # DELETE: the version the DeleteObject makes noncurrent (the archive).
    version_id: str | None = None


def own_version(version_id: str | None) -> str | None:
    """A version id of the object's own; None for S3's "null", the version of an object written while
    versioning was off, which a DeleteObject may remove for good should versioning be suspended."""
    return version_id if version_id and version_id != "null" else None


def plan_archive(
    s3: S3Client, method: ArchiveMethod, etags: set[str | None], versions: set[str | None], bucket: str, key: str
) -> tuple[ArchivePlan, bool]:
    """DELETE where the bucket allows it (`method`), every ledger row of the object moved one object
    (`etags`), and that object has a version of its own: named by the copies (`versions`), else by
    a HEAD now (a reused copy named none). The second value says the version was looked up: the
    caller records it in the ledger before the delete, so a crash after it still knows the archive."""
    if method is not ArchiveMethod.DELETE or None in etags or len(etags) != 1:
        return ArchivePlan(ArchiveMethod.COPY), False
    named = {own_version(version) for version in versions}
    if len(named) == 1 and None not in named:
        return ArchivePlan(ArchiveMethod.DELETE, named.pop()), False
    found = head(s3, bucket, key)
    version_id = own_version(found.get("VersionId")) if found is not None else None
    if found is None or version_id is None or unquote(found["ETag"]) not in etags:
        return ArchivePlan(ArchiveMethod.COPY), False
    return ArchivePlan(ArchiveMethod.DELETE, version_id), True


# Keys one DeleteObjects request takes at most.
DELETE_BATCH = 1000


@dataclass
class Deleted:
    """What an archive by DeleteObjects did to each key: archived (with a note where other bytes at
    the key were left alone), or why not (S3's refusal: tried again later)."""

    notes: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def delete_archives(s3: S3Client, bucket: str, etags: Mapping[str, str], before_write: Callable[[], None]) -> Deleted:
    """The archive by DeleteObjects in a versioned bucket of the objects at these keys with these
    ETags only (up to DELETE_BATCH keys: one request). Each delete is conditional on its ETag, which
    S3 checks; the keys are also looked at right before (one listing), for servers that ignore the
    condition: bytes written at a key since the move are never deleted."""
    deleted = Deleted()
    found = stat_objects(s3, bucket, etags)
    wanted: list[ObjectIdentifierTypeDef] = []
    for key, etag in etags.items():
        facts = found[key]
        if facts is None:
            # No live object at the key: the version the move copied is noncurrent already (an
            # earlier attempt that a crash kept from the ledger).
            deleted.notes[key] = ""
        elif facts.etag != etag:
            deleted.notes[key] = SOURCE_REPLACED
        else:
            wanted.append({"Key": key, "ETag": f'"{etag}"'})
    if not wanted:
        return deleted
    before_write()
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": wanted, "Quiet": True})
    refused = {str(error.get("Key")): str(error.get("Code", "")) for error in answer.get("Errors", [])}
    for item in wanted:
        key = item["Key"]
        code = refused.get(key)
        if code is None or code in _NOT_THAT_OBJECT:
            # Deleted; or the condition failed or the key is empty now: as after a single DeleteObject.
            deleted.notes[key] = "" if code is None or head(s3, bucket, key) is None else SOURCE_REPLACED
        else:
            deleted.errors[key] = f"archive failed: {code}"
    return deleted
