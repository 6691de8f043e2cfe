"""S3 as a dagster_aws S3Resource, with a connection pool sized for concurrent copies."""

from __future__ import annotations

from typing import Any

from dagster_aws.s3 import S3Resource

from costalloc_pipeline.s3 import make_s3_client


class RepositoryS3(S3Resource):
    max_pool_connections: int = 64

    def get_client(self) -> Any:
        return make_s3_client(
            self.endpoint_url, self.region_name or "us-east-1", self.max_pool_connections, self.max_attempts
        )
