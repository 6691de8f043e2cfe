"""boto3 clients for the repository's S3, real or the embedded moto server, and for the other AWS
services costalloc asks (Cost Explorer, CloudWatch, Service Quotas), built the same way."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

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


def aws_client(service: str, endpoint_url: str | None, region: str, config: Config) -> Any:
    """A client of `service` at the repository's endpoint: on a local one (moto's server answers
    every service on one port) with moto's throwaway credentials, else with the usual AWS chain.

    boto3 itself is untyped (no boto3-stubs): callers annotate the result with the stubs' type."""
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=region, config=config, **local_credentials(endpoint_url)
    )


def make_s3_client(
    endpoint_url: str | None, region: str, max_pool_connections: int = 10, max_attempts: int = 8
) -> S3Client:
    client: S3Client = aws_client("s3", endpoint_url, region, client_config(max_pool_connections, max_attempts))
    return client


def s3_client(settings: Settings, max_pool_connections: int = 10) -> S3Client:
    return make_s3_client(settings.s3_endpoint_url, settings.s3_region, max_pool_connections)
