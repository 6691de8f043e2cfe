"""Putting the planned objects into S3: the buckets they go to and their concurrent upload."""

from __future__ import annotations

import base64
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Self

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.buckets import create_bucket_request
from costalloc_pipeline.errors import Unavailable
from costalloc_pipeline.seed.model import PlannedObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def ensure_bucket(client: S3Client, bucket: str, region: str) -> None:
    """Create the bucket unless this account already has it."""
    try:
        client.create_bucket(**create_bucket_request(bucket, region))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise Unavailable(f"cannot create bucket {bucket}: {error}") from error
    except BotoCoreError as error:
        raise Unavailable(f"cannot create bucket {bucket}: {error}") from error


class ObjectUploader:
    """Uploads objects concurrently through one pooled client, with a bounded number in flight."""

    def __init__(self, client: S3Client, concurrency: int) -> None:
        self._client = client
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="seed-upload")
        self._in_flight: deque[Future[int]] = deque()
        self._limit = 4 * concurrency
        self.objects = 0
        self.object_bytes = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def put(self, obj: PlannedObject) -> None:
        # Bounded so a million planned objects never queue up in memory.
        if len(self._in_flight) >= self._limit:
            self._settle(self._in_flight.popleft())
        self._in_flight.append(self._pool.submit(self._upload, obj))

    def wait(self) -> None:
        while self._in_flight:
            self._settle(self._in_flight.popleft())

    def _settle(self, future: Future[int]) -> None:
        self.object_bytes += future.result()
        self.objects += 1

    def _upload(self, obj: PlannedObject) -> int:
        # S3 checks the body against Content-MD5, so a corrupted upload fails instead of landing.
        content_md5 = base64.b64encode(bytes.fromhex(obj.md5_hex)).decode("ascii")
        try:
            self._client.put_object(Bucket=obj.bucket, Key=obj.key, Body=obj.body, ContentMD5=content_md5)
        except (ClientError, BotoCoreError) as error:
            raise Unavailable(f"cannot upload s3://{obj.bucket}/{obj.key}: {error}") from error
        return len(obj.body)
