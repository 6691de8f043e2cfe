"""S3 as a dagster_aws S3Resource, with a connection pool sized for concurrent copies."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from dagster_aws.s3 import S3Resource

from costalloc_pipeline.embedded import ensure_embedded_s3
from costalloc_pipeline.headroom import Headroom, measure, quotas_client
from costalloc_pipeline.s3 import make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class RepositoryS3(S3Resource):
    max_pool_connections: int = 64
    # The embedded default: the data folder whose own S3 server is used, started when a client is
    # first needed (not when the code location is imported). Unset for a configured endpoint.
    embedded_data_dir: str | None = None

    def _endpoint(self) -> str | None:
        if self.endpoint_url is None and self.embedded_data_dir is not None:
            return ensure_embedded_s3(Path(self.embedded_data_dir))
        return self.endpoint_url

    def get_client(self) -> S3Client:
        return make_s3_client(
            self._endpoint(), self.region_name or "us-east-1", self.max_pool_connections, self.max_attempts
        )

    def bucket_headroom(self, allocation_buckets: Collection[str], fallback_quota: int) -> Headroom:
        """The account's buckets against its quota (headroom.py), Service Quotas beside this S3."""
        quotas = quotas_client(self._endpoint(), self.region_name or "us-east-1")
        return measure(self.get_client(), quotas, fallback_quota, allocation_buckets)
