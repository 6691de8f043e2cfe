"""boto3 clients for the repository's S3, real or the embedded moto server."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from costalloc_pipeline.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# moto accepts any credentials; real S3 takes them from the usual AWS chain.
_LOCAL_CREDENTIALS = {"aws_access_key_id": "costalloc-local", "aws_secret_access_key": "costalloc-local"}


def client_config(max_pool_connections: int = 10, max_attempts: int = 8) -> Config:
    # Standard retry mode backs off on 500, 503 SlowDown and dropped connections.
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": "path"},
    )


def local_credentials(endpoint_url: str | None) -> dict[str, str]:
    is_local = endpoint_url is not None and ("127.0.0.1" in endpoint_url or "localhost" in endpoint_url)
    if is_local and not os.environ.get("AWS_ACCESS_KEY_ID"):
        return dict(_LOCAL_CREDENTIALS)
    return {}


def make_s3_client(
    endpoint_url: str | None, region: str, max_pool_connections: int = 10, max_attempts: int = 8
) -> S3Client:
    # boto3 itself is untyped (no boto3-stubs): the annotation gives its client the stubs' type.
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        config=client_config(max_pool_connections, max_attempts),
        **local_credentials(endpoint_url),
    )
    return client


def s3_client(settings: Settings, max_pool_connections: int = 10) -> S3Client:
    return make_s3_client(settings.s3_endpoint_url, settings.s3_region, max_pool_connections)
