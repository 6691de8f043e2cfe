"""Steps 2 and 3: server-side copy to the target bucket, same key, verified against the handle.

Objects up to the multipart threshold take one CopyObject, conditional on the source still being
the bytes the handle describes; its response ETag is the MD5 of the copy, so a match proves size
and checksum without another request. Larger objects take UploadPartCopy and are verified by
reading the copy back.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from costalloc_pipeline.mover.handles import Handle

_READ_CHUNK = 8 * 1024**2
ARCHIVE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"})
# A live copy carries no tags: above all not the archive tag, which a lifecycle rule expires. An
# archived object left at the same key by an earlier move must not pass its tags on.
NO_TAGS = {"TaggingDirective": "REPLACE", "Tagging": ""}
# What a download of the object is served with: a moved or archived file must be served the same.
_CARRIED_HEADERS = (
    "ContentType",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "CacheControl",
    "Expires",
    "Metadata",
)


class VerificationFailed(Exception):
    """The copy is not the handle's bytes: the handle must not move."""


@dataclass(frozen=True)
class CopyOptions:
    multipart_threshold: int
    part_size: int


@dataclass(frozen=True)
class Copied:
    handle_id: int
    # The ETag of the verified copy, so a resumed move can recognise it without reading it again.
    object_etag: str
    reused: bool


def _unquote(etag: str) -> str:
    return etag.strip('"')


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_plain_md5(value: str | None) -> bool:
    return bool(value) and len(value) == 32 and all(c in "0123456789abcdef" for c in value.lower())


def head(s3: Any, bucket: str, key: str) -> dict | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def read_md5(s3: Any, bucket: str, key: str) -> tuple[int, str]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.md5()
    size = 0
    for chunk in iter(lambda: body.read(_READ_CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def verify_by_read(s3: Any, handle: Handle, bucket: str) -> str:
    """Read the object back; return its ETag when it is the handle's bytes."""
    size, md5 = read_md5(s3, bucket, handle.key)
    if handle.size is not None and size != handle.size:
        raise VerificationFailed(f"size {size} != handle size {handle.size} at s3://{bucket}/{handle.key}")
    if handle.md5 and md5 != handle.md5.lower():
        raise VerificationFailed(f"MD5 {md5} != handle MD5 {handle.md5} at s3://{bucket}/{handle.key}")
    return _unquote(head(s3, bucket, handle.key)["ETag"])


def reusable_copy(s3: Any, handle: Handle, bucket: str, known_etag: str | None) -> str | None:
    """The ETag of an object already at the destination that is this handle's bytes, if any."""
    existing = head(s3, bucket, handle.key)
    # An archived object at that key (an earlier move away from this bucket) is not readable and
    # expires: it must be overwritten by a fresh copy, never reused.
    if existing is None or existing.get("StorageClass", "STANDARD") in ARCHIVE_STORAGE_CLASSES:
        return None
    etag = _unquote(existing["ETag"])
    if handle.size is not None and existing["ContentLength"] != handle.size:
        return None
    if etag == (handle.md5 or "").lower() or (known_etag is not None and etag == known_etag):
        return etag
    return None


def copy_object(s3: Any, handle: Handle, target_bucket: str, options: CopyOptions) -> str:
    """Copy the handle's object to the target bucket and return the verified copy's ETag."""
    if handle.size is not None and handle.size > options.multipart_threshold:
        multipart_copy(s3, handle.bucket, handle.key, target_bucket, handle.size, options.part_size)
        return verify_by_read(s3, handle, target_bucket)
    source = {"Bucket": handle.bucket, "Key": handle.key}
    if _is_plain_md5(handle.md5):
        try:
            response = s3.copy_object(
                Bucket=target_bucket,
                Key=handle.key,
                CopySource=source,
                CopySourceIfMatch=f'"{handle.md5}"',
                **NO_TAGS,
            )
        except ClientError as error:
            if _error_code(error) not in ("PreconditionFailed", "412"):
                raise
            # The source ETag is not its MD5 (a multipart upload) or the source is not the
            # handle's bytes: copy anyway and let the read-back decide.
        else:
            etag = _unquote(response["CopyObjectResult"]["ETag"])
            if etag == handle.md5.lower():
                return etag
            return verify_by_read(s3, handle, target_bucket)
    s3.copy_object(Bucket=target_bucket, Key=handle.key, CopySource=source, **NO_TAGS)
    return verify_by_read(s3, handle, target_bucket)


def multipart_copy(
    s3: Any,
    source_bucket: str,
    key: str,
    target_bucket: str,
    size: int,
    part_size: int,
    **create_args: Any,
) -> None:
    """UploadPartCopy in parallel parts; the upload is aborted on any failure."""
    source = s3.head_object(Bucket=source_bucket, Key=key)
    # CopyObject keeps these by itself; a multipart upload starts bare, so they are carried over.
    for header in _CARRIED_HEADERS:
        if source.get(header):
            create_args.setdefault(header, source[header])
    upload_id = s3.create_multipart_upload(Bucket=target_bucket, Key=key, **create_args)["UploadId"]
    ranges = [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]

    def copy_part(number: int, first: int, last: int) -> dict:
        response = s3.upload_part_copy(
            Bucket=target_bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": source_bucket, "Key": key},
            CopySourceRange=f"bytes={first}-{last}",
        )
        return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

    try:
        with ThreadPoolExecutor(max_workers=4) as parts_pool:
            parts = list(parts_pool.map(lambda args: copy_part(*args), [(i + 1, a, b) for i, (a, b) in enumerate(ranges)]))
        s3.complete_multipart_upload(
            Bucket=target_bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=target_bucket, Key=key, UploadId=upload_id)
        raise
