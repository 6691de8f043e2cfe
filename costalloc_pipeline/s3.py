"""boto3 clients for the repository's S3, real or the embedded moto server."""

from __future__ import annotations

import boto3
from botocore.config import Config

from costalloc_pipeline.config import Settings


def client_config(max_pool_connections: int = 10) -> Config:
    # Standard retry mode backs off on 500, 503 SlowDown and dropped connections.
    return Config(
        retries={"mode": "standard", "max_attempts": 8},
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": "path"},
    )


def s3_client(settings: Settings, max_pool_connections: int = 10):
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=client_config(max_pool_connections),
    )
