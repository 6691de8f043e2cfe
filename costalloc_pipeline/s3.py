"""boto3 clients for the repository's S3, real or the embedded moto server, and for the other AWS
services costalloc asks (Cost Explorer, CloudWatch, Service Quotas), built the same way."""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader
from botocore.utils import parse_timestamp

from costalloc_pipeline.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# moto accepts any credentials; real S3 takes them from the usual AWS chain.
_LOCAL_CREDENTIALS = {"aws_access_key_id": "costalloc-local", "aws_secret_access_key": "costalloc-local"}


# A User-Agent of our own, fixed (boto3 adds botocore's version): botocore otherwise assembles its
# own from a dozen parts, once or twice for every request, a tenth of the client's CPU a request.
USER_AGENT = f"costalloc Python/{platform.python_version()}"


def client_config(max_pool_connections: int = 10, max_attempts: int = 8) -> Config:
    # Standard retry mode backs off on 500, 503 SlowDown and dropped connections.
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": "path"},
        user_agent=USER_AGENT,
    )


def local_credentials(endpoint_url: str | None) -> dict[str, str]:
    is_local = endpoint_url is not None and ("127.0.0.1" in endpoint_url or "localhost" in endpoint_url)
    if is_local and not os.environ.get("AWS_ACCESS_KEY_ID"):
        return dict(_LOCAL_CREDENTIALS)
    return {}


def utc_timestamp(value: Any) -> dt.datetime:
    """A timestamp of an AWS answer. S3's XML gives ISO 8601 in UTC ("2026-12-07T20:03:37.000Z"),
    one or two a request, which the standard library reads in a fraction of the time botocore's
    general parser (dateutil) takes; every other form goes to botocore's parser."""
    if isinstance(value, str) and value.endswith("Z"):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    parsed: dt.datetime = parse_timestamp(value)
    return parsed


@functools.cache
def _data_loader() -> Loader:
    """botocore's reader of its service and endpoint models, one for the process: each session
    reads and parses them again otherwise, about 0.1 s of CPU a client."""
    loader: Loader = botocore.session.Session().get_component("data_loader")
    return loader


def aws_client(service: str, endpoint_url: str | None, region: str, config: Config) -> Any:
    """A client of `service` at the repository's endpoint: on a local one (moto's server answers
    every service on one port) with moto's throwaway credentials, else with the usual AWS chain.
    Each client has a session of its own (sessions are not thread-safe), all sharing one loader.

    boto3 itself is untyped (no boto3-stubs): callers annotate the result with the stubs' type."""
    session = botocore.session.Session()
    session.register_component("data_loader", _data_loader())
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
    return boto3.session.Session(botocore_session=session).client(
        service, endpoint_url=endpoint_url, region_name=region, config=config, **local_credentials(endpoint_url)
    )


def make_s3_client(
    endpoint_url: str | None, region: str, max_pool_connections: int = 10, max_attempts: int = 8
) -> S3Client:
    client: S3Client = aws_client("s3", endpoint_url, region, client_config(max_pool_connections, max_attempts))
    return client


def s3_client(settings: Settings, max_pool_connections: int = 10) -> S3Client:
    return make_s3_client(settings.s3_endpoint_url, settings.s3_region, max_pool_connections)
