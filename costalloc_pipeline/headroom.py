"""Bucket headroom: how many general purpose buckets the AWS account has, out of its quota.

Every new cost allocation is a new bucket, and AWS refuses CreateBucket (TooManyBuckets) once the
account holds its quota of them (10,000 by default). The count is one paginated ListBuckets (S3
answers up to 10,000 buckets a page, so an account at the default quota is one request); the quota
comes from Service Quotas (the applied value, else AWS's default), else from
COSTALLOC_BUCKET_QUOTA. A new cost allocation costs this one listing and up to two Service Quotas
requests; existing ones cost nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, select

from costalloc_pipeline.config import Settings
from costalloc_pipeline.errors import Unavailable
from costalloc_pipeline.s3 import aws_client
from costalloc_pipeline.schema.repository import cost_allocation

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_service_quotas import ServiceQuotasClient

log = logging.getLogger(__name__)

QUOTA_SERVICE_CODE = "s3"
# "General purpose buckets" in Service Quotas.
BUCKET_QUOTA_CODE = "L-DC2B2D3D"
# The largest MaxBuckets S3 takes. (moto 5.2 cuts a page at MaxBuckets but sends no
# ContinuationToken, so a smaller page would undercount there.)
LIST_PAGE_SIZE = 10_000
# The asset check warns from this share of the quota on.
WARN_PERCENT = 80.0

APPLIED = "service-quotas"
AWS_DEFAULT = "service-quotas-default"
SETTING = "COSTALLOC_BUCKET_QUOTA"


@dataclass(frozen=True)
class BucketQuota:
    value: int
    # APPLIED, AWS_DEFAULT or SETTING: where the value came from.
    source: str


@dataclass(frozen=True)
class Headroom:
    """The account's buckets against its quota; `cost_allocation_buckets` of them are ours."""

    used: int
    quota: BucketQuota
    cost_allocation_buckets: int

    @property
    def headroom(self) -> int:
        return max(self.quota.value - self.used, 0)

    @property
    def percent_used(self) -> float:
        return round(100 * self.used / self.quota.value, 1)

    @property
    def near_quota(self) -> bool:
        return self.percent_used >= WARN_PERCENT

    def as_json(self) -> dict[str, Any]:
        return {
            "bucketsUsed": self.used,
            "quota": self.quota.value,
            "quotaSource": self.quota.source,
            "headroom": self.headroom,
            "percentUsed": self.percent_used,
            "costAllocationBuckets": self.cost_allocation_buckets,
        }

    def summary(self) -> str:
        return (
            f"{self.used} of {self.quota.value} general purpose buckets used ({self.percent_used}%), "
            f"{self.headroom} left; quota from {self.quota.source}; "
            f"{self.cost_allocation_buckets} are cost allocation buckets"
        )


def account_buckets(s3: S3Client) -> list[str]:
    """Names of every general purpose bucket of the account (all regions), page by page."""
    pages = s3.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": LIST_PAGE_SIZE})
    return [bucket["Name"] for page in pages for bucket in page.get("Buckets", []) if "Name" in bucket]


def quota_region(s3_region: str) -> str:
    """Bucket quotas are shown only in one region per partition (us-east-1 for the commercial one)."""
    if s3_region.startswith("us-gov-"):
        return "us-gov-west-1"
    if s3_region.startswith("cn-"):
        return "cn-north-1"
    return "us-east-1"


@cache
def quotas_client(endpoint_url: str | None, s3_region: str) -> ServiceQuotasClient:
    """Service Quotas beside the S3 endpoint (moto's server answers every service on one port).
    Two attempts: a quota that cannot be read falls back, it does not hold up an assign."""
    config = Config(retries={"mode": "standard", "max_attempts": 2})
    client: ServiceQuotasClient = aws_client("service-quotas", endpoint_url, quota_region(s3_region), config)
    return client


def bucket_quota(quotas: ServiceQuotasClient | None, fallback: int) -> BucketQuota:
    """The applied quota, else AWS's default, else `fallback`. moto answers the first with
    NoSuchResourceException and the second with a 500 (moto 5.2), so there it is the setting."""
    if quotas is not None:
        for source, lookup in (
            (APPLIED, quotas.get_service_quota),
            (AWS_DEFAULT, quotas.get_aws_default_service_quota),
        ):
            try:
                value = lookup(ServiceCode=QUOTA_SERVICE_CODE, QuotaCode=BUCKET_QUOTA_CODE)["Quota"].get("Value")
            except (ClientError, BotoCoreError) as error:
                log.info("bucket quota from %s unavailable: %s", source, error)
                continue
            if value is not None and value >= 1:
                return BucketQuota(int(value), source)
    return BucketQuota(fallback, SETTING)


def allocation_buckets(conn: Connection) -> list[str]:
    return list(conn.execute(select(cost_allocation.c.bucket).order_by(cost_allocation.c.bucket)).scalars())


def measure(
    s3: S3Client, quotas: ServiceQuotasClient | None, fallback_quota: int, allocation_buckets: Collection[str]
) -> Headroom:
    """The account's buckets, its quota, and how many of its buckets are `allocation_buckets`."""
    names = account_buckets(s3)
    ours = set(allocation_buckets)
    return Headroom(len(names), bucket_quota(quotas, fallback_quota), sum(1 for name in names if name in ours))


def settings_quotas(settings: Settings) -> ServiceQuotasClient | None:
    """Service Quotas for the settings' S3, or None for an embedded server not yet started (the
    endpoint is unknown: asking AWS about another account would be wrong)."""
    if settings.s3_endpoint_url is None and not settings.real_s3:
        return None
    return quotas_client(settings.s3_endpoint_url, settings.s3_region)


def require_room_for(s3: S3Client, settings: Settings, bucket: str) -> None:
    """Raises Unavailable (503) when creating `bucket` would exceed the account's bucket quota.

    A bucket that exists already (ours, left by an earlier failure) takes no new room. When the
    buckets cannot be listed the check steps aside and CreateBucket decides (a refusal is a 503
    too): a missing s3:ListAllMyBuckets permission must not stop every new cost allocation.
    """
    try:
        names = account_buckets(s3)
    except (ClientError, BotoCoreError) as error:
        log.warning("could not count the account's buckets before creating %s: %s", bucket, error)
        return
    if bucket in names:
        return
    quota = bucket_quota(settings_quotas(settings), settings.bucket_quota)
    if len(names) >= quota.value:
        raise Unavailable(
            f"bucket {bucket} cannot be created: the AWS account holds {len(names)} general purpose buckets "
            f"and its quota is {quota.value} (from {quota.source}); raise the quota in Service Quotas "
            f"(s3 {BUCKET_QUOTA_CODE}) or retire unused cost allocations (`costalloc retire`), then retry; "
            "nothing was written"
        )
