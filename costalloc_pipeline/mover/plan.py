"""Pure planning: split a project's misplaced handles into bounded bundles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# No pandas-stubs in the environment: pandas is untyped here.
import pandas as pd


@dataclass(frozen=True)
class Candidate:
    """A handle of the files_out_of_place dataset (the replica's view, maybe stale)."""

    file_handle_id: int
    bucket: str
    # None for a handle with no key: it still goes to the mover, which reports it as failed.
    key: str | None
    size: int


@dataclass
class Bundle:
    index: int
    handle_ids: list[int] = field(default_factory=list)
    bytes: int = 0

    @property
    def files(self) -> int:
        return len(self.handle_ids)


@dataclass(frozen=True)
class BundlePlan:
    bundles: list[Bundle]
    # Handles left for the next run because max_bundles bundles were full.
    deferred_files: int
    deferred_bytes: int


def _groups_by_key(candidates: Iterable[Candidate]) -> list[list[Candidate]]:
    # Handles sharing a key go in one bundle: those on one object are copied once and the bundle's
    # archive step sees them all repointed; those on different objects with that key (in several
    # buckets) would meet at one target key, and one bundle lets only one of them move (DESIGN.md
    # section 4). Sorted by key, so a bundle's keys are close together in the buckets' listings.
    groups: dict[str | None, list[Candidate]] = {}
    for candidate in sorted(candidates, key=lambda c: (c.key or "", c.bucket, c.file_handle_id)):
        groups.setdefault(candidate.key, []).append(candidate)
    return list(groups.values())


def _fits(bundle: Bundle, group_files: int, group_bytes: int, max_files: int, max_bytes: int) -> bool:
    return bundle.files + group_files <= max_files and (bundle.bytes + group_bytes <= max_bytes or bundle.files == 0)


def plan_bundles(candidates: Sequence[Candidate], max_files: int, max_bytes: int, max_bundles: int) -> BundlePlan:
    """Bundles bounded in bytes (hard) and in number (hard); the file bound grows so that a large
    project still fits in max_bundles bundles. What does not fit is deferred to the next run."""
    if max_files < 1 or max_bytes < 1 or max_bundles < 1:
        raise ValueError("bundle bounds must be positive")
    files_per_bundle = max(max_files, math.ceil(len(candidates) / max_bundles))
    bundles: list[Bundle] = []
    deferred_files = deferred_bytes = 0
    current: Bundle | None = None
    for group in _groups_by_key(candidates):
        # Handles on one object count its bytes once.
        group_bytes = sum({c.bucket: c.size for c in group}.values())
        if current is None or not _fits(current, len(group), group_bytes, files_per_bundle, max_bytes):
            if len(bundles) == max_bundles:
                deferred_files += len(group)
                deferred_bytes += group_bytes
                continue
            current = Bundle(index=len(bundles))
            bundles.append(current)
        current.handle_ids.extend(c.file_handle_id for c in group)
        current.bytes += group_bytes
    return BundlePlan(bundles, deferred_files, deferred_bytes)


def candidates_of(frame: pd.DataFrame) -> list[Candidate]:
    """The rows of a files_out_of_place dataset as candidates; a NULL size counts as 0 bytes for
    the bundle bounds (the mover reports such a handle instead of moving it)."""
    sizes = frame["content_size"].fillna(0).astype("int64") if len(frame) else []
    return [
        Candidate(int(handle_id), bucket, None if pd.isna(key) else key, int(size))
        for handle_id, bucket, key, size in zip(
            frame["file_handle_id"], frame["bucket_name"], frame["key"], sizes, strict=False
        )
    ]
