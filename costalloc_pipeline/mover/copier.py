"""Step 3: server-side copy to the target bucket, same key, verified against the handle, as
copy_plan.py decided from what is really at the source and at the target.

Objects up to the multipart threshold take one CopyObject; its response ETag is the MD5 of the
object it made, so a match proves the copy without another request. Larger objects take
UploadPartCopy over the source's real length, every part conditional on the source's ETag, and
are verified by their size and, when an MD5 is recorded, by reading the copy back.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal, TypedDict, Unpack, get_args

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.mover.copy_plan import expected_md5
from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.mover.objects import (
    ObjectFacts,
    error_code,
    head,
    read_md5,
    unquote,
)
from costalloc_pipeline.mover.sharing import run_all

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import TaggingDirectiveType
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        CopySourceTypeDef,
        CreateMultipartUploadRequestObjectInitiateMultipartUploadTypeDef,
    )


class Untagged(TypedDict):
    TaggingDirective: TaggingDirectiveType
    Tagging: str


class WriteCondition(TypedDict, total=False):
    """The conditional-write arguments, which CopyObject and CompleteMultipartUpload both take (no
    TypedDict of the stubs fits both)."""

    IfMatch: str
    IfNoneMatch: str


# A live copy carries no tags: above all not the archive tag, which a lifecycle rule expires.
NO_TAGS: Untagged = {"TaggingDirective": "REPLACE", "Tagging": ""}
# What a download of the object is served with: a moved or archived file must be served the same.
_CarriedHeader = Literal[
    "ContentType",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "CacheControl",
    "Expires",
    "Metadata",
]
_CARRIED_HEADERS: tuple[_CarriedHeader, ...] = get_args(_CarriedHeader)
# 409 ConditionalRequestConflict: a concurrent write to the key was under way.
_PRECONDITION = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class VerificationFailed(Exception):
    """The copy is not the handle's bytes, or the source is not what the handle records: the handle
    must not move."""

    def __init__(self, reason: str, made_etag: str | None = None) -> None:
        super().__init__(reason)
        # The ETag of the bad copy this run made, if any: the ledger keeps it, so a later run knows
        # the object at the target key is costalloc's own and may replace it.
        self.made_etag = made_etag


class TargetConflict(Exception):
    """Something other than the handle's bytes is at the target key: it is not overwritten."""


# What S3 or a verification can answer that fails one file (or one archive), never the whole run.
S3Errors = (ClientError, BotoCoreError, VerificationFailed, TargetConflict)


@dataclass(frozen=True)
class CopyOptions:
    multipart_threshold: int
    part_size: int


def read_back_matches(s3: S3Client, handle: Handle, source: ObjectFacts, bucket: str) -> bool:
    """Whether the object at the handle's key in `bucket` reads as the handle's bytes."""
    return read_md5(s3, bucket, handle.key or "") == (source.size, expected_md5(handle, source))


def _write_condition(replaces: str | None) -> WriteCondition:
    # Conditional writes where S3 honours them: a key that was free must still be free, an object
    # replaced must still be the one decided on. (moto ignores these on CopyObject; the claims
    # in the repository are what keep costalloc's own runs apart.)
    return {"IfMatch": f'"{replaces}"'} if replaces else {"IfNoneMatch": "*"}


def _verify(s3: S3Client, handle: Handle, source: ObjectFacts, bucket: str, etag: str | None) -> str:
    """The copy's ETag, once the copy is proven to be the handle's bytes. `etag`: the one the copy
    request answered with (None for a multipart copy, whose ETag is no MD5)."""
    md5 = expected_md5(handle, source)
    if md5 is not None and etag is not None and "-" not in etag:
        if etag != md5:
            raise VerificationFailed(f"the copy's MD5 {etag} is not {md5}", etag)
        return etag
    found = head(s3, bucket, handle.key or "")
    if found is None:
        raise VerificationFailed(f"the copy at s3://{bucket}/{handle.key} is missing")
    made = unquote(found["ETag"])
    if int(found["ContentLength"]) != source.size:
        raise VerificationFailed(f"the copy at s3://{bucket}/{handle.key} is not {source.size} bytes", made)
    if md5 is not None:
        size, read = read_md5(s3, bucket, handle.key or "")
        if (size, read) != (source.size, md5):
            raise VerificationFailed(
                f"the copy read back as {size} bytes with MD5 {read}, not {source.size} and {md5}", made
            )
    return made


@dataclass(frozen=True)
class Copied:
    """A verified copy: its ETag, and the version of the source object it was made from (None where
    the source bucket keeps no versions), which a versioned bucket's archive is found by."""

    etag: str
    source_version_id: str | None


def _source(bucket: str, key: str, version_id: str | None) -> CopySourceTypeDef:
    return {"Bucket": bucket, "Key": key, "VersionId": version_id} if version_id else {"Bucket": bucket, "Key": key}


def copy_object(
    s3: S3Client,
    handle: Handle,
    source: ObjectFacts,
    target_bucket: str,
    options: CopyOptions,
    replaces: str | None,
    pool: Executor,
    before_write: Callable[[], None] = lambda: None,
    source_version_id: str | None = None,
) -> Copied:
    """Copy the handle's object to the target bucket and return the verified copy. `before_write`
    runs right before each request that writes (the run's fence); a multipart copy's parts share
    `pool`, the phase's pool of requests (sharing.py). `source_version_id`: copy that version of the
    source (an archive in a versioned bucket), not its current object."""
    key = handle.key or ""
    bucket = handle.bucket or ""
    try:
        if source.size > options.multipart_threshold:
            _, version_id = multipart_copy(
                s3,
                _source(bucket, key, source_version_id),
                target_bucket,
                options.part_size,
                pool,
                source.etag,
                complete_args=_write_condition(replaces),
                before_write=before_write,
            )
            return Copied(_verify(s3, handle, source, target_bucket, None), version_id)
        before_write()
        response = s3.copy_object(
            Bucket=target_bucket,
            Key=key,
            CopySource=_source(bucket, key, source_version_id),
            CopySourceIfMatch=f'"{source.etag}"',
            **_write_condition(replaces),
            **NO_TAGS,
        )
    except ClientError as error:
        if error_code(error) in _PRECONDITION:
            raise TargetConflict("the source or the target key changed during the copy; retried next run") from error
        raise
    etag = _verify(s3, handle, source, target_bucket, unquote(response["CopyObjectResult"]["ETag"]))
    return Copied(etag, response.get("CopySourceVersionId") or source_version_id)


def multipart_copy(
    s3: S3Client,
    source: CopySourceTypeDef,
    target_bucket: str,
    part_size: int,
    pool: Executor,
    source_etag: str | None = None,
    complete_args: WriteCondition | None = None,
    before_write: Callable[[], None] = lambda: None,
    **create_args: Unpack[CreateMultipartUploadRequestObjectInitiateMultipartUploadTypeDef],
) -> tuple[int, str | None]:
    """UploadPartCopy of the source's real length (from its HEAD, never the recorded size: a size
    that lies must not truncate anything) to the same key in `target_bucket`; the upload is aborted
    on any failure. Returns the length and the version of the source copied (None: unversioned)."""
    key = source["Key"]
    found = (
        s3.head_object(Bucket=source["Bucket"], Key=key, VersionId=source["VersionId"])
        if "VersionId" in source
        else s3.head_object(Bucket=source["Bucket"], Key=key)
    )
    etag = source_etag or unquote(found["ETag"])
    if unquote(found["ETag"]) != etag:
        raise VerificationFailed(f"s3://{source['Bucket']}/{key} changed before its copy")
    size = int(found["ContentLength"])
    version_id = found.get("VersionId")
    # Every part from the version the HEAD saw: a source overwritten half-way fails the parts' condition.
    pinned: CopySourceTypeDef = {**source, "VersionId": version_id} if version_id else source
    # CopyObject keeps these by itself; a multipart upload starts bare, so they are carried over.
    for header in _CARRIED_HEADERS:
        if found.get(header) and header not in create_args:
            create_args[header] = found[header]
    upload_id = s3.create_multipart_upload(Bucket=target_bucket, Key=key, **create_args)["UploadId"]
    ranges = [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]

    def copy_part(number: int, first: int, last: int) -> CompletedPartTypeDef:
        before_write()
        response = s3.upload_part_copy(
            Bucket=target_bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource=pinned,
            CopySourceRange=f"bytes={first}-{last}",
            # A source that changes half-way fails the copy instead of producing a mixture.
            CopySourceIfMatch=f'"{etag}"',
        )
        return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

    try:
        parts = run_all(pool, [partial(copy_part, i + 1, a, b) for i, (a, b) in enumerate(ranges)])
        before_write()
        s3.complete_multipart_upload(
            Bucket=target_bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **(complete_args or {})
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=target_bucket, Key=key, UploadId=upload_id)
        raise
    return size, version_id
