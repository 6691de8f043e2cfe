"""Pure: what a move costs once (requests, the archive copies for their retention) and what it
changes on the monthly bill, bucket by bucket.

Moving bytes between two buckets of one storage class changes no total: the source bucket's share
of the bill shrinks by what the target's grows. What the bill really gains is the requests, the
archive copies kept during the retention period (billed for at least the class's minimum
duration), and the days of the grace period when both the copy and the old object are live. A
source object that another AVAILABLE handle still names is not archived: it stays live beside its
copy, so that storage is added, not moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from costalloc_pipeline.billing.prices import DAYS_PER_MONTH, PriceTable
from costalloc_pipeline.dry_run.traffic import Move, Requests

# A server-side copy without a StorageClass writes STANDARD, as the mover's copies do.
COPY_STORAGE_CLASS = "STANDARD"
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class BucketChange:
    """One bucket's change: live bytes (and their monthly cost), and archive bytes kept in it
    during the retention period (and their monthly cost then)."""

    bucket: str
    live_bytes: int
    live_month: float
    archive_bytes: int
    archive_month: float


@dataclass(frozen=True)
class Costs:
    copy_requests: float
    archive_requests: float
    # LIST is billed at the PUT/COPY rate, HEAD and GET at the read rate.
    list_requests: float
    read_requests: float
    # The archive copies for the whole retention period.
    archive_storage: float
    # Both the copy and the old object live during the grace period.
    grace_storage: float
    buckets: list[BucketChange]

    @property
    def one_off(self) -> float:
        return (
            self.copy_requests
            + self.archive_requests
            + self.list_requests
            + self.read_requests
            + self.archive_storage
            + self.grace_storage
        )

    @property
    def monthly_live(self) -> float:
        """The lasting change of the monthly bill (after the retention period)."""
        return sum(change.live_month for change in self.buckets)

    @property
    def monthly_during_retention(self) -> float:
        return self.monthly_live + sum(change.archive_month for change in self.buckets)


@dataclass(frozen=True)
class Archive:
    storage_class: str
    retention_days: int
    grace_seconds: int


def _distinct(moves: Iterable[Move]) -> list[Move]:
    # Handles on one source object: its bytes once, copied once to its one target key.
    seen: dict[tuple[str, str], Move] = {}
    for move in moves:
        seen.setdefault(move.source, move)
    return list(seen.values())


def bucket_changes(
    moves: Iterable[Move], target_bucket: str, archive: Archive, prices: PriceTable
) -> list[BucketChange]:
    live: dict[str, tuple[int, float]] = {}
    kept: dict[str, int] = {}

    def add_live(bucket: str, size: int, month: float) -> None:
        old_size, old_month = live.get(bucket, (0, 0.0))
        live[bucket] = (old_size + size, old_month + month)

    for move in _distinct(moves):
        add_live(target_bucket, move.size, prices.storage_month(COPY_STORAGE_CLASS, move.size))
        if move.archived:
            add_live(move.bucket, -move.size, -prices.storage_month(move.storage_class, move.size))
            kept[move.bucket] = kept.get(move.bucket, 0) + move.size
    return [
        BucketChange(
            bucket=bucket,
            live_bytes=live.get(bucket, (0, 0.0))[0],
            live_month=live.get(bucket, (0, 0.0))[1],
            archive_bytes=kept.get(bucket, 0),
            archive_month=prices.storage_month(archive.storage_class, kept.get(bucket, 0)),
        )
        for bucket in sorted(set(live) | set(kept))
    ]


def costs_of(
    moves: Iterable[Move], requests: Requests, target_bucket: str, archive: Archive, prices: PriceTable
) -> Costs:
    moving = list(moves)
    archived = [move for move in _distinct(moving) if move.archived]
    grace_days = archive.grace_seconds / SECONDS_PER_DAY
    return Costs(
        copy_requests=prices.writes(COPY_STORAGE_CLASS, requests.copy_writes),
        archive_requests=prices.writes(archive.storage_class, requests.archive_writes),
        list_requests=prices.writes(COPY_STORAGE_CLASS, requests.list_objects_min),
        read_requests=prices.reads(requests.reads),
        archive_storage=sum(prices.kept(archive.storage_class, move.size, archive.retention_days) for move in archived),
        grace_storage=sum(prices.storage_month(move.storage_class, move.size) for move in archived)
        * grace_days
        / DAYS_PER_MONTH,
        buckets=bucket_changes(moving, target_bucket, archive, prices),
    )
