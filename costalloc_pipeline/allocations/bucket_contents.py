"""What a cost allocation's bucket still holds, and emptying it when its cost allocation is retired.

An archive is the recovery path of a moved file, kept for the retention period (mover/archive.py):
an object in an archive storage class tagged costalloc:archived=true, or in a versioned bucket a
noncurrent version (what the mover's DeleteObject leaves). Any other current object is live data.
One ListObjectVersions page per thousand versions, and one GetObjectTagging per current object in
an archive class (a live object is never mistaken for an archive because of its class alone).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.errors import Unavailable
from costalloc_pipeline.mover.objects import carries_archive_tag
from costalloc_pipeline.storage_classes import ARCHIVE_STORAGE_CLASSES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


# A key and one of its versions (None: the bucket's current object at the key, as S3 names it).
Version = tuple[str, str | None]


@dataclass(frozen=True)
class BucketContents:
    exists: bool
    live_keys: tuple[str, ...] = ()
    archives: tuple[Version, ...] = ()
    # Delete markers of a versioned bucket: no data, but they keep a bucket from going.
    delete_markers: tuple[Version, ...] = ()
    # Incomplete multipart uploads (key, upload id): never objects, but they keep a bucket from going.
    uploads: tuple[tuple[str, str], ...] = ()


def _is_archive(s3: S3Client, bucket: str, key: str, storage_class: str | None, recorded: Collection[str]) -> bool:
    if storage_class not in ARCHIVE_STORAGE_CLASSES:
        return False
    try:
        return carries_archive_tag(s3, bucket, key)
    except ClientError as error:
        # moto 5.2 refuses GetObjectTagging on an object in an archive class; the ledger's record of
        # the archive then says it is one of ours.
        if str(error.response.get("Error", {}).get("Code", "")) != "InvalidObjectState":
            raise
        return key in recorded


def _named(version_id: str | None) -> str | None:
    # An unversioned bucket's objects are its "null" versions.
    return version_id if version_id and version_id != "null" else None


def _versions(versions: tuple[Version, ...]) -> list[ObjectIdentifierTypeDef]:
    return [{"Key": key, "VersionId": version} if version else {"Key": key} for key, version in versions]


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in {"NoSuchBucket", "404"}


def bucket_contents(s3: S3Client, bucket: str, recorded: Collection[str] = ()) -> BucketContents:
    """The bucket's live objects, archives and unfinished uploads; `exists` False when it is gone.
    `recorded`: the keys the ledger archived in this bucket."""
    live: list[str] = []
    archives: list[Version] = []
    markers: list[Version] = []
    uploads: list[tuple[str, str]] = []
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for item in page.get("Versions", []):
                key, version = item["Key"], _named(item.get("VersionId"))
                if not item.get("IsLatest") or _is_archive(s3, bucket, key, item.get("StorageClass"), recorded):
                    archives.append((key, version))
                else:
                    live.append(key)
            markers.extend((item["Key"], _named(item.get("VersionId"))) for item in page.get("DeleteMarkers", []))
        for upload_page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            uploads.extend((upload["Key"], upload["UploadId"]) for upload in upload_page.get("Uploads", []))
    except ClientError as error:
        if _missing(error):
            return BucketContents(exists=False)
        raise Unavailable(f"S3 refused to list bucket {bucket}: {error}; nothing was changed") from None
    except BotoCoreError as error:
        raise Unavailable(
            f"S3 is unavailable, bucket {bucket} was not looked at: {error}; nothing was changed"
        ) from None
    return BucketContents(True, tuple(live), tuple(archives), tuple(markers), tuple(uploads))


def empty_out(
    s3: S3Client, bucket: str, contents: BucketContents, expire_archives: bool, delete_the_bucket: bool
) -> tuple[int, str | None]:
    """Deletes the archives of `contents` (`expire_archives`; a noncurrent version by its id, for
    good), then its delete markers, uploads and the bucket (`delete_the_bucket`): only what was
    looked at, nothing found later. Returns the archives deleted, and S3's reason when it refused a
    step (e.g. an object that arrived since: S3 refuses to delete a bucket that is not empty), else None."""
    deleted = 0
    try:
        for start in range(0, len(contents.archives) if expire_archives else 0, 1000):
            chosen = contents.archives[start : start + 1000]
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": _versions(chosen), "Quiet": True})
            deleted += len(chosen) - len(answer.get("Errors", []))
        if delete_the_bucket:
            for start in range(0, len(contents.delete_markers), 1000):
                markers = contents.delete_markers[start : start + 1000]
                s3.delete_objects(Bucket=bucket, Delete={"Objects": _versions(markers), "Quiet": True})
            for key, upload_id in contents.uploads:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            s3.delete_bucket(Bucket=bucket)
    except ClientError as error:
        if _missing(error):
            return deleted, None
        return deleted, str(error.response.get("Error", {}).get("Code", "") or error)
    except BotoCoreError as error:
        return deleted, str(error)
    return deleted, None
