"""What S3 says about objects: size, ETag, storage class. Verification is of the object, not of a
request, so the mover looks at what is really there before it copies and before it reuses.

A HEAD per file would be a third request for every moved file (copy, archive, HEAD). Instead a
bundle's keys are looked up with ListObjectsV2 pages that start at each key not yet resolved and
list about as many keys as are still wanted: where the keys are dense in the bucket (a project's files,
an allocation's bucket) one page answers up to a thousand of them; where they are sparse, each page
still answers at least one, so it never costs more requests than a HEAD per key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

from costalloc_pipeline.buckets import ARCHIVE_TAG
from costalloc_pipeline.storage_classes import ARCHIVE_STORAGE_CLASSES

_READ_CHUNK = 8 * 1024**2
_PAGE = 1000


@dataclass(frozen=True)
class ObjectFacts:
    size: int
    # Unquoted, lower-case. A single-part object's ETag is its MD5; a multipart one's has a "-".
    etag: str
    storage_class: str

    @property
    def md5(self) -> str | None:
        return self.etag if is_plain_md5(self.etag) else None

    @property
    def archived(self) -> bool:
        return self.storage_class in ARCHIVE_STORAGE_CLASSES


def unquote(etag: str) -> str:
    return etag.strip('"').lower()


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_plain_md5(value: str | None) -> bool:
    return value is not None and len(value) == 32 and all(c in "0123456789abcdef" for c in value.lower())


def head(s3: S3Client, bucket: str, key: str, version_id: str | None = None) -> HeadObjectOutputTypeDef | None:
    """The object's HEAD (of one version of it, when `version_id` is given), or None: no such object."""
    try:
        if version_id is not None:
            return s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
            return None
        raise


def facts_of_head(found: HeadObjectOutputTypeDef) -> ObjectFacts:
    return ObjectFacts(int(found["ContentLength"]), unquote(found["ETag"]), found.get("StorageClass") or "STANDARD")


def head_facts(s3: S3Client, bucket: str, key: str) -> ObjectFacts | None:
    found = head(s3, bucket, key)
    return None if found is None else facts_of_head(found)


def _before(key: str) -> str:
    # ListObjectsV2 starts *after* StartAfter: a proper prefix of the key sorts before it, and only
    # keys sharing that prefix lie in between.
    return key[:-1]


def stat_objects(s3: S3Client, bucket: str, keys: Iterable[str]) -> dict[str, ObjectFacts | None]:
    """Facts of each key in the bucket (None: no such object), in as few list requests as it takes."""
    pending = sorted(set(keys))
    found: dict[str, ObjectFacts | None] = {}
    index = 0
    start_after = _before(pending[0]) if pending else ""
    while index < len(pending):
        # Twice as many keys a page as are still wanted (room for other keys between them, and for
        # the listing's end), not a thousand: botocore parses every key a page lists, which was most
        # of the client's CPU when pages of a thousand answered batches of sixty-four.
        wanted = 2 * (len(pending) - index)
        page = s3.list_objects_v2(Bucket=bucket, StartAfter=start_after, MaxKeys=min(_PAGE, wanted))
        listed = {
            item["Key"]: ObjectFacts(int(item["Size"]), unquote(item["ETag"]), item.get("StorageClass") or "STANDARD")
            for item in page.get("Contents", [])
        }
        # Everything up to the page's last key is answered; all of it when the listing ended.
        last = max(listed) if listed and page.get("IsTruncated") else None
        while index < len(pending) and (last is None or pending[index] <= last):
            found[pending[index]] = listed.get(pending[index])
            index += 1
        if index < len(pending) and last is not None:
            # Skip the stretch of other keys before the next one wanted, unless the page ended inside it.
            start_after = max(_before(pending[index]), last)
    return found


def read_md5(s3: S3Client, bucket: str, key: str) -> tuple[int, str]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.md5()
    size = 0
    for chunk in iter(lambda: body.read(_READ_CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def carries_archive_tag(s3: S3Client, bucket: str, key: str) -> bool:
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {"Key": ARCHIVE_TAG[0], "Value": ARCHIVE_TAG[1]} in tags
