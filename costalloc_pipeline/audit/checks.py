"""The audit's S3 side: what a HEAD answer says is wrong with a handle's object, the checks of
handles (with their read-back), archives and bucket lifecycle rules against S3."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.archives.locate import ArchiveRecord, find_archive
from costalloc_pipeline.audit.violations import (
    ARCHIVE_LOST,
    ARCHIVED,
    EXPIRING,
    MISSING,
    OVERWRITTEN,
    UNCHECKED,
    WRONG_MD5,
    WRONG_SIZE,
)
from costalloc_pipeline.buckets import ARCHIVE_RULE_ID, ARCHIVE_TAG, early_noncurrent_expiry
from costalloc_pipeline.mover.objects import carries_archive_tag, head, read_md5, unquote
from costalloc_pipeline.storage_classes import ARCHIVE_STORAGE_CLASSES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3Errors = (ClientError, BotoCoreError)


@dataclass(frozen=True)
class AuditedHandle:
    id: int
    bucket: str
    key: str
    size: int | None
    md5: str | None


# --- pure decisions -------------------------------------------------------------------------------


def _plain_etag(found: Mapping[str, Any]) -> str:
    return unquote(str(found["ETag"]))


def object_problem(handle: AuditedHandle, found: Mapping[str, Any] | None) -> str | None:
    """What a HEAD answer (None: no object) says is wrong with a handle's object."""
    if found is None:
        return MISSING
    if found.get("StorageClass") in ARCHIVE_STORAGE_CLASSES:
        return ARCHIVED
    if handle.size is not None and found["ContentLength"] != handle.size:
        return WRONG_SIZE
    etag = _plain_etag(found)
    if handle.md5 and "-" not in etag and etag != handle.md5.lower():
        return WRONG_MD5
    return None


def md5_unproven(handle: AuditedHandle, found: Mapping[str, Any]) -> bool:
    """A multipart ETag is not an MD5: only reading the object proves the handle's checksum."""
    return bool(handle.md5) and "-" in _plain_etag(found)


def tag_count(found: Mapping[str, Any]) -> int:
    headers = found.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return int(headers.get("x-amz-tagging-count") or 0)


def _matches_archive_tag(rule_filter: Mapping[str, Any]) -> bool:
    key, value = ARCHIVE_TAG
    tags = [rule_filter["Tag"]] if "Tag" in rule_filter else rule_filter.get("And", {}).get("Tags", [])
    return {"Key": key, "Value": value} in tags


def lifecycle_problems(rules: Iterable[Mapping[str, Any]], retention_days: int) -> list[str]:
    """Ids of enabled rules that expire archives before `retention_days` (archive copies, or the
    noncurrent versions a versioned bucket's archives are), or expire objects that are not archives
    (every live object of the bucket could go). No rule at all keeps archives for ever: a cost, not a loss."""
    listed = list(rules)
    unsafe = early_noncurrent_expiry(listed, retention_days)
    for rule in listed:
        expiration = rule.get("Expiration", {})
        if rule.get("Status") != "Enabled" or not ("Days" in expiration or "Date" in expiration):
            continue
        archives_only = _matches_archive_tag(rule.get("Filter", {}))
        if not archives_only or expiration.get("Days", 0) < retention_days:
            unsafe.append(str(rule.get("ID", ARCHIVE_RULE_ID)))
    return sorted(set(unsafe), key=unsafe.index)


# --- checks against S3 ----------------------------------------------------------------------------


def check_handle(s3: S3Client, handle: AuditedHandle, read_back: bool, moved_etag: str | None = None) -> str | None:
    """`moved_etag`: the ETag of the copy verified when costalloc moved the handle here (the handle
    unchanged since): another object at that key now means the copy was overwritten."""
    try:
        found = head(s3, handle.bucket, handle.key)
        problem = object_problem(handle, found)
        if problem is not None or found is None:
            return problem
        if moved_etag is not None and _plain_etag(found) != moved_etag.lower():
            return OVERWRITTEN
        if tag_count(found) and carries_archive_tag(s3, handle.bucket, handle.key):
            return EXPIRING
        if read_back and md5_unproven(handle, found):
            size, md5 = read_md5(s3, handle.bucket, handle.key)
            if handle.size is not None and size != handle.size:
                return WRONG_SIZE
            if md5 != (handle.md5 or "").lower():
                return WRONG_MD5
        return None
    except S3Errors:
        return UNCHECKED


def _check_archive(s3: S3Client, record: ArchiveRecord) -> str | None:
    try:
        found, _ = find_archive(s3, record)
    except S3Errors:
        return UNCHECKED
    return ARCHIVE_LOST if found is None else None
