"""Pure: how long the moves take, from the configured concurrency and two assumed figures.

The assumptions are parameters, printed with the estimate, because they depend on the deployment:
`latency_seconds`, the time S3 takes to answer one request apart from the bytes it moves, and
`bytes_per_second`, the rate of one server-side copy (or read) stream. Within a bundle the objects
are first looked at, page after page (serial), then copies and archives share
`COPY_CONCURRENCY` threads; no request is shorter than its own bytes take. Bundles of one project run
`bundle_concurrency` at a time (the limit of Dagster's pool `costalloc_bundles`, dagster.yaml).
Database time (reading handles, repointing in batches) is left out: it is small beside S3's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from costalloc_pipeline.dry_run.traffic import Requests

DEFAULT_LATENCY_SECONDS = 0.05
DEFAULT_BYTES_PER_SECOND = 100 * 10**6
# The default limit of the pool costalloc_bundles in dagster.yaml.
DEFAULT_BUNDLE_CONCURRENCY = 4


@dataclass(frozen=True)
class TimeModel:
    latency_seconds: float
    bytes_per_second: float
    copy_concurrency: int
    bundle_concurrency: int


@dataclass(frozen=True)
class BundleWork:
    requests: Requests
    # Bytes of the bundle's longest single request.
    longest_transfer: int


def bundle_seconds(work: BundleWork, model: TimeModel) -> float:
    listing = work.requests.list_objects_min * model.latency_seconds
    pooled = (
        work.requests.pooled * model.latency_seconds + work.requests.transferred_bytes / model.bytes_per_second
    ) / model.copy_concurrency
    longest = model.latency_seconds + work.longest_transfer / model.bytes_per_second if work.requests.pooled else 0.0
    return listing + max(pooled, longest)


def total_seconds(bundles: Sequence[BundleWork], model: TimeModel) -> float:
    """Bundles share `bundle_concurrency` slots; the longest bundle bounds the whole from below."""
    each = [bundle_seconds(work, model) for work in bundles]
    return max(sum(each) / model.bundle_concurrency, max(each, default=0.0))
