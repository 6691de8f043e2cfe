"""What a plan takes and gives: its targets in, planned rows and objects out, and its tally."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table


@dataclass(frozen=True)
class PlanTargets:
    """What the plan needs from the world: first free ids, buckets and a timestamp."""

    first_entity_id: int
    first_handle_id: int
    default_bucket: str
    external_bucket: str
    external_storage_location_id: int
    now: datetime


@dataclass(frozen=True, slots=True)
class PlannedRow:
    table: Table
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlannedObject:
    bucket: str
    key: str
    body: bytes
    md5_hex: str


PlannedItem = PlannedRow | PlannedObject


@dataclass
class PlanTally:
    """Filled while the plan is consumed: counts and the ids of the special cases."""

    project_ids: list[int] = field(default_factory=list)
    folders: int = 0
    file_entities: int = 0
    revisions: int = 0
    handles: int = 0
    shared_within_project: list[int] = field(default_factory=list)
    shared_across_projects: list[int] = field(default_factory=list)
    same_key_pairs: list[tuple[int, int]] = field(default_factory=list)
    external_handle_ids: list[int] = field(default_factory=list)
    preview_handle_ids: list[int] = field(default_factory=list)

    @property
    def nodes(self) -> int:
        return len(self.project_ids) + self.folders + self.file_entities
