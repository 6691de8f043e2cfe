"""The storage report: objects and bytes in each managed bucket by storage class, and what a month
of them costs at the price table's rates.

By the repository's records (the default): the `files` rows do not record a storage class, but
live objects are STANDARD by construction (the mover writes STANDARD), so the AVAILABLE handles of
storage.bucket_usage are STANDARD; archives are the ledger's finished moves whose archive is still
within its retention, in the archive class. Handles that share one key count once each, as the
repository sees them. `from_s3` replaces these counts with a listing of the buckets themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from costalloc_pipeline.billing.listing import bucket_classes
from costalloc_pipeline.billing.prices import PriceTable, load_price_table
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.errors import NotFound
from costalloc_pipeline.naming import parse_allocation_id
from costalloc_pipeline.schema.repository import MoveState, move_ledger
from costalloc_pipeline.storage import BucketUsage, bucket_usage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The mover writes every live copy in this class (mover/copier.py).
LIVE_STORAGE_CLASS = "STANDARD"

# Objects and bytes by storage class.
ClassCounts = Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class ClassStorage:
    storage_class: str
    objects: int
    bytes: int
    monthly_cost: float

    def as_json(self) -> dict[str, Any]:
        return {
            "storageClass": self.storage_class,
            "objects": self.objects,
            "bytes": self.bytes,
            "monthlyCost": round(self.monthly_cost, 6),
        }


@dataclass(frozen=True)
class BucketStorage:
    # None for the default bucket.
    cost_allocation_id: int | None
    cost_allocation: str | None
    bucket: str
    active_projects: int
    classes: tuple[ClassStorage, ...]

    @property
    def objects(self) -> int:
        return sum(entry.objects for entry in self.classes)

    @property
    def bytes(self) -> int:
        return sum(entry.bytes for entry in self.classes)

    @property
    def monthly_cost(self) -> float:
        return sum(entry.monthly_cost for entry in self.classes)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": None if self.cost_allocation_id is None else str(self.cost_allocation_id),
            "name": self.cost_allocation,
            "bucket": self.bucket,
            "activeProjects": self.active_projects,
            "objects": self.objects,
            "bytes": self.bytes,
            "monthlyCost": round(self.monthly_cost, 6),
            "storageClasses": [entry.as_json() for entry in self.classes],
        }


@dataclass(frozen=True)
class StorageReport:
    # "repository" (the records) or "s3" (a listing of the buckets).
    source: str
    # The default bucket first, then the cost allocations by name.
    buckets: tuple[BucketStorage, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "objects": sum(entry.objects for entry in self.buckets),
            "bytes": sum(entry.bytes for entry in self.buckets),
            "monthlyCost": round(sum(entry.monthly_cost for entry in self.buckets), 6),
            "buckets": [entry.as_json() for entry in self.buckets],
        }

    def for_cost_allocation(self, raw_id: str) -> BucketStorage:
        """One cost allocation's figures, by its id as the API takes it (digits); a 400 or a 404."""
        wanted = parse_allocation_id(raw_id)
        for entry in self.buckets:
            if entry.cost_allocation_id == wanted:
                return entry
        raise NotFound(f"cost allocation {wanted} does not exist")


def priced(counts: ClassCounts, prices: PriceTable) -> tuple[ClassStorage, ...]:
    """Each class's counts with a month of its bytes at the table's rate, classes by name."""
    return tuple(
        ClassStorage(storage_class, objects, size, prices.storage_month(storage_class, size))
        for storage_class, (objects, size) in sorted(counts.items())
    )


def build_report(
    source: str, usage: Iterable[BucketUsage], counts: Callable[[BucketUsage], ClassCounts], prices: PriceTable
) -> StorageReport:
    buckets = tuple(
        BucketStorage(
            entry.cost_allocation_id,
            entry.cost_allocation,
            entry.bucket,
            entry.active_projects,
            priced(counts(entry), prices),
        )
        for entry in usage
    )
    return StorageReport(source, buckets)


def kept_archives(
    repository: Engine, retention_days: int, now: dt.datetime | None = None
) -> dict[str, tuple[int, int]]:
    """Objects and bytes of the archives the ledger records per bucket, not yet expired: finished
    moves whose source was archived less than `retention_days` ago. Several handles may have moved
    off one key: its archive counts once."""
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    archives = (
        select(
            move_ledger.c.archive_bucket.label("bucket"),
            func.max(func.coalesce(move_ledger.c.content_size, 0)).label("size"),
        )
        .where(
            move_ledger.c.state == MoveState.DONE.value,
            move_ledger.c.archive_key.is_not(None),
            move_ledger.c.archived_on > cutoff,
        )
        .group_by(move_ledger.c.archive_bucket, move_ledger.c.archive_key)
        .subquery()
    )
    with repository.connect() as conn:
        rows = conn.execute(
            select(archives.c.bucket, func.count(), func.coalesce(func.sum(archives.c.size), 0)).group_by(
                archives.c.bucket
            )
        ).all()
    return {bucket: (int(objects), int(size)) for bucket, objects, size in rows}


def repository_report(
    repository: Engine, prices: PriceTable, archive_storage_class: str, retention_days: int
) -> StorageReport:
    """The report by the repository's records and the ledger."""
    archives = kept_archives(repository, retention_days)

    def counts(entry: BucketUsage) -> ClassCounts:
        by_class: dict[str, tuple[int, int]] = {}
        if entry.files:
            by_class[LIVE_STORAGE_CLASS] = (entry.files, entry.bytes)
        if entry.bucket in archives:
            by_class[archive_storage_class] = archives[entry.bucket]
        return by_class

    return build_report("repository", bucket_usage(repository), counts, prices)


def storage_report(settings: Settings, s3: S3Client | None = None) -> StorageReport:
    """The report of the settings' repository, at their prices and archive class; given an S3
    client, with the counts of a listing of each bucket instead of the records."""
    repository = engine_for(settings.repository_url)
    prices = load_price_table(settings.price_table)
    if s3 is None:
        return repository_report(repository, prices, settings.archive_storage_class, settings.archive_retention_days)
    client = s3
    return build_report("s3", bucket_usage(repository), lambda entry: bucket_classes(client, entry.bucket), prices)
