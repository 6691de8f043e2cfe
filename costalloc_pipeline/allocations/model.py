"""The cost allocation model and its JSON forms, as Synapse writes them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from costalloc_pipeline.naming import format_entity_id
from costalloc_pipeline.schema.repository import AssociationState


def _iso(moment: dt.datetime) -> str:
    # Synapse writes UTC instants with milliseconds and a Z.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class CostAllocation:
    id: int
    name: str
    bucket: str
    storage_location_id: int
    # Projects whose association is ACTIVE; a REMOVING project is on its way out.
    projects: tuple[int, ...]
    etag: str
    created_by: int
    created_on: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "bucket": self.bucket,
            "projects": [format_entity_id(project) for project in self.projects],
            "eTag": self.etag,
            "createdBy": str(self.created_by),
            "createdOn": _iso(self.created_on),
        }


@dataclass(frozen=True)
class Page:
    results: list[CostAllocation]
    next_page_token: str | None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"results": [allocation.as_json() for allocation in self.results]}
        if self.next_page_token is not None:
            body["nextPageToken"] = self.next_page_token
        return body


@dataclass(frozen=True)
class AssignResult:
    cost_allocation: CostAllocation
    # True when this call created the cost allocation and its bucket.
    created: bool


@dataclass(frozen=True)
class Association:
    project_id: int
    cost_allocation_id: int
    state: AssociationState
    change_number: int


@dataclass(frozen=True)
class UploadDestination:
    entity_id: int
    project_id: int
    bucket: str
    key_prefix: str
    storage_location_id: int
    cost_allocation_name: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "entityId": format_entity_id(self.entity_id),
            "projectId": format_entity_id(self.project_id),
            "bucket": self.bucket,
            "keyPrefix": self.key_prefix,
            "storageLocationId": str(self.storage_location_id),
            "costAllocation": self.cost_allocation_name,
        }
