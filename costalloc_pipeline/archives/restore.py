"""Restore requests for archived objects (S3 RestoreObject), idempotent, with their price.

An object whose restore is already under way is not asked again (S3 would answer 409
RestoreAlreadyInProgress; that is a status, not an error). An object already restored is asked
again: S3 then only moves the restored copy's expiry to `days` from now, which is what a caller
asking for `days` wants. What the requests cost comes from the price table ("<class>:<tier>").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.archives.locate import (
    GONE,
    IN_PROGRESS,
    NOT_NEEDED,
    RESTORED,
    ArchiveRecord,
    find_archive,
    restore_status,
)
from costalloc_pipeline.billing.prices import GB, PriceTable
from costalloc_pipeline.errors import BadRequest
from costalloc_pipeline.mover.objects import error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import RestoreRequestTypeDef

Tier = Literal["Standard", "Bulk", "Expedited"]
TIERS: tuple[Tier, ...] = get_args(Tier)
# S3 keeps a restored copy for 1 day at least; 30 days is a generous upper bound for a recovery.
MAX_DAYS = 30
REQUESTED = "requested"
EXTENDED = "restored already; its copy now expires later"


@dataclass(frozen=True)
class RestoreResult:
    bucket: str
    key: str
    storage_class: str | None
    size: int
    # REQUESTED, EXTENDED, IN_PROGRESS, NOT_NEEDED, GONE, or "failed: ..." / "refused: ...".
    outcome: str
    # The noncurrent version restored, in a versioned bucket; None: the object at the key.
    version_id: str | None = None

    @property
    def ok(self) -> bool:
        """Requested, or standing already: nothing for the caller to fix or retry."""
        return self.outcome in (REQUESTED, EXTENDED, IN_PROGRESS, NOT_NEEDED)

    @property
    def billed(self) -> bool:
        """Whether this call made a restore request S3 bills (a retrieval, or a longer copy)."""
        return self.outcome in (REQUESTED, EXTENDED)


@dataclass(frozen=True)
class RestoreEstimate:
    retrieval: float
    requests: float
    # The restored copy is billed as STANDARD storage for the days it is kept.
    restored_copies: float

    @property
    def total(self) -> float:
        return self.retrieval + self.requests + self.restored_copies


def check_request(tier: str, days: int) -> Tier:
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"--days must be from 1 to {MAX_DAYS}, got {days}")
    for known in TIERS:
        if tier == known:
            return known
    raise BadRequest(f"--tier must be one of {', '.join(TIERS)}, got {tier!r}")


def _priced(prices: PriceTable, storage_class: str, tier: Tier) -> bool:
    return f"{storage_class}:{tier}" in prices.restore_gb


def request_restore(
    s3: S3Client, record: ArchiveRecord, tier: Tier, days: int, prices: PriceTable, now: dt.datetime
) -> RestoreResult:
    bucket, key = record.bucket, record.key
    storage_class: str | None = None
    size = 0
    version_id: str | None = None
    try:
        found, version_id = find_archive(s3, record)
        status = restore_status(found, now)
        if found is None:
            return RestoreResult(bucket, key, None, 0, GONE, version_id)
        storage_class = found.get("StorageClass") or "STANDARD"
        size = int(found["ContentLength"])
        if status.state in (NOT_NEEDED, IN_PROGRESS):
            return RestoreResult(bucket, key, storage_class, size, status.state, version_id)
        if not _priced(prices, storage_class, tier):
            # S3 offers no such tier for the class (DEEP_ARCHIVE has no Expedited).
            refused = f"refused: {storage_class} has no {tier} tier"
            return RestoreResult(bucket, key, storage_class, size, refused, version_id)
        request: RestoreRequestTypeDef = {"Days": days, "GlacierJobParameters": {"Tier": tier}}
        if version_id is not None:
            # A noncurrent version (an archive by DeleteObject) is restored by its id.
            s3.restore_object(Bucket=bucket, Key=key, VersionId=version_id, RestoreRequest=request)
        else:
            s3.restore_object(Bucket=bucket, Key=key, RestoreRequest=request)
    except ClientError as error:
        if error_code(error) == "RestoreAlreadyInProgress":
            return RestoreResult(bucket, key, storage_class, size, IN_PROGRESS, version_id)
        return RestoreResult(bucket, key, storage_class, size, f"failed: {error}", version_id)
    except BotoCoreError as error:
        return RestoreResult(bucket, key, storage_class, size, f"failed: {error}", version_id)
    outcome = EXTENDED if status.state == RESTORED else REQUESTED
    return RestoreResult(bucket, key, storage_class, size, outcome, version_id)


def estimate(prices: PriceTable, results: Iterable[RestoreResult], tier: Tier, days: int) -> RestoreEstimate:
    """What the requests this call made cost (an extension retrieves nothing again)."""
    retrieval = requests = copies = 0.0
    for result in results:
        if not result.billed or result.storage_class is None:
            continue
        price_key = f"{result.storage_class}:{tier}"
        if result.outcome == REQUESTED:
            retrieval += prices.restore_gb[price_key] * result.size / GB
        requests += prices.restore_per_1000[price_key] / 1000
        copies += prices.kept("STANDARD", result.size, days)
    return RestoreEstimate(retrieval, requests, copies)


def restore_newest(
    s3: S3Client, records: Sequence[ArchiveRecord], tier: Tier, days: int, prices: PriceTable, now: dt.datetime
) -> RestoreResult:
    """Restore a handle's newest archive that is still there (`records`: newest first); the older
    ones hold the same bytes and would only cost a second retrieval."""
    first: RestoreResult | None = None
    for record in records:
        result = request_restore(s3, record, tier, days, prices, now)
        if result.outcome != GONE:
            return result
        first = first or result
    if first is None:
        raise ValueError("no archive to restore")
    return first
