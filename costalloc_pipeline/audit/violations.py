"""The audit's report: the kinds of violation and the Violations counted, with their first ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FIRST_IDS = 10

MISSING = "I1: object missing"
WRONG_SIZE = "I1: object size differs from the handle"
WRONG_MD5 = "I1: object MD5 differs from the handle"
ARCHIVED = "I2: object archived (unreadable) but referenced by an AVAILABLE handle"
EXPIRING = "I2: object tagged for expiry but referenced by an AVAILABLE handle"
ARCHIVE_LOST = "I3: archived object missing within its retention period"
UNSAFE_LIFECYCLE = "I3: bucket lifecycle expires archives early or expires other objects"
OUTSIDE = "I5: ledger row outside repository-managed storage"
COPIED_NOT_REPOINTED = "ledger: copied but not repointed"
REPOINTED_NOT_ARCHIVED = "ledger: repointed but source not archived"
OVERWRITTEN = "I1: object differs from the copy verified when the handle was moved there"
UNCHECKED = "unchecked: S3 refused the check"


@dataclass
class Violations:
    """Counts and the first offending ids (handle ids; bucket names for bucket-wide problems)."""

    checked_handles: int = 0
    # AVAILABLE S3 handles in repository-managed storage: checked_handles of them, or a sample.
    managed_handles: int = 0
    checked_archives: int = 0
    checked_ledger_rows: int = 0
    sampled: bool = False
    found: dict[str, list[int | str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, offender: int | str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        first = self.found.setdefault(kind, [])
        if len(first) < FIRST_IDS:
            first.append(offender)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "checkedHandles": self.checked_handles,
            "managedHandles": self.managed_handles,
            "sampled": self.sampled,
            "checkedArchives": self.checked_archives,
            "checkedLedgerRows": self.checked_ledger_rows,
            "totalViolations": self.total,
            "violations": {
                kind: {"count": self.counts[kind], "firstIds": self.found[kind]} for kind in sorted(self.counts)
            },
        }
