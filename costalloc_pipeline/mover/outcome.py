"""What a bundle (or a resume) did, summed over a run's bundles."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BundleResult:
    moved_files: int = 0
    moved_bytes: int = 0
    reused_copies: int = 0
    archived_objects: int = 0
    # Repointed, their old objects kept live until the grace period is over.
    archives_pending: int = 0
    sources_still_referenced: int = 0
    changed_meanwhile: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: dict[int, str] = field(default_factory=dict)
    # Why the bundle stopped before its end (lease lost, target changed), or "".
    stopped: str = ""

    def merge(self, other: BundleResult) -> BundleResult:
        merged: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if isinstance(mine, dict) and not isinstance(mine, Counter):
                merged[item.name] = {**mine, **theirs}
            elif isinstance(mine, str):
                merged[item.name] = mine or theirs
            else:
                merged[item.name] = mine + theirs
        return BundleResult(**merged)
