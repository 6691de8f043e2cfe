"""What the OpenAPI document says about the REST API: bodies, errors and every status each operation
can answer. The constraints come from the rules the service enforces (naming.py,
allocations/paging.py), so the document and the service cannot drift apart;
tests/test_api_contract.py fuzzes the served API against this document with all of schemathesis'
checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from costalloc_pipeline.allocations import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, PAGE_TOKEN_PATTERN
from costalloc_pipeline.naming import ALLOCATION_ID_PATTERN, ENTITY_ID_PATTERN, MAX_ENTITY_ID, NAME_PATTERN

_DIGITS = "^[0-9]+$"


class Reason(BaseModel):
    """Every error: what was wrong, for a person to read."""

    reason: str


class CostAllocation(BaseModel):
    model_config = ConfigDict(title="CostAllocation")

    id: Annotated[str, Field(pattern=_DIGITS)]
    name: str
    bucket: str
    projects: Annotated[list[str], Field(description="the projects assigned to it, as syn ids")]
    eTag: str
    createdBy: Annotated[str, Field(pattern=_DIGITS)]
    createdOn: Annotated[str, Field(description="UTC, ISO 8601 with milliseconds")]


class CostAllocationPage(BaseModel):
    results: list[CostAllocation]
    nextPageToken: Annotated[
        str | None, Field(default=None, pattern=PAGE_TOKEN_PATTERN, description="absent on the last page")
    ]


class UploadDestination(BaseModel):
    entityId: str
    projectId: str
    bucket: str
    keyPrefix: str
    storageLocationId: Annotated[str, Field(pattern=_DIGITS)]
    costAllocation: Annotated[str | None, Field(description="null when the project has none")]


class StorageClassUsage(BaseModel):
    storageClass: str
    objects: Annotated[int, Field(ge=0)]
    bytes: Annotated[int, Field(ge=0)]
    monthlyCost: Annotated[float, Field(ge=0, description="dollars a month of these bytes costs (the price table)")]


class CostAllocationStorage(BaseModel):
    model_config = ConfigDict(title="CostAllocationStorage")

    id: Annotated[str, Field(pattern=_DIGITS)]
    name: str
    bucket: str
    activeProjects: Annotated[int, Field(ge=0)]
    objects: Annotated[int, Field(ge=0)]
    bytes: Annotated[int, Field(ge=0)]
    monthlyCost: Annotated[float, Field(ge=0)]
    storageClasses: Annotated[
        list[StorageClassUsage],
        Field(description="live handles are STANDARD; the ledger's unexpired archives are in the archive class"),
    ]


class RetiredCostAllocation(BaseModel):
    """What `DELETE /costAllocation/{id}` did (allocations/retire.py)."""

    model_config = ConfigDict(title="RetiredCostAllocation")

    id: Annotated[str, Field(pattern=_DIGITS)]
    name: str
    bucket: str
    bucketDeleted: bool
    archivesDeleted: Annotated[int, Field(ge=0)]
    archivesKept: Annotated[int, Field(ge=0, description="archives left in a kept bucket, until they expire")]
    storageLocationId: Annotated[str, Field(pattern=_DIGITS)]
    storageLocationKept: Annotated[bool, Field(description="kept when past handles or moves name it")]
    s3Refused: Annotated[str | None, Field(description="S3's answer when it refused to delete archives or the bucket")]


class AssignRequest(BaseModel):
    name: Annotated[
        str,
        Field(
            pattern=NAME_PATTERN,
            description="1 to 64 letters, digits, '-', '.' or '_', case-insensitive; surrounding blanks are trimmed",
        ),
    ]


# Parameters: documented here, validated by the service (with the same patterns and bounds), so
# that every refusal has the service's reason.
EntityId = Annotated[
    str,
    Path(
        json_schema_extra={"pattern": ENTITY_ID_PATTERN},
        description=f"a project, or an entity in one: syn123 or 123, up to {MAX_ENTITY_ID}",
    ),
]
CostAllocationId = Annotated[
    str,
    Path(
        json_schema_extra={"pattern": ALLOCATION_ID_PATTERN},
        description="a cost allocation's id, as `id` in its JSON",
    ),
]
RetireId = Annotated[
    str,
    Path(json_schema_extra={"pattern": ALLOCATION_ID_PATTERN}, description="the cost allocation's id"),
]
DeleteBucket = Annotated[
    bool, Query(alias="deleteBucket", description="delete the bucket too (no archives in it, unless expireArchives)")
]
ExpireArchives = Annotated[
    bool,
    Query(
        alias="expireArchives",
        description="delete the bucket's archives now, ending the recovery path of their files",
    ),
]
Limit = Annotated[
    int | None,
    Query(
        json_schema_extra={"minimum": 1, "maximum": MAX_PAGE_LIMIT},
        description=f"page size (default {DEFAULT_PAGE_LIMIT})",
    ),
]
PageToken = Annotated[
    str | None,
    Query(
        alias="nextPageToken",
        json_schema_extra={"pattern": PAGE_TOKEN_PATTERN},
        description="the nextPageToken of the previous page",
    ),
]

# The body is read by hand (api.py: after authentication), so FastAPI does not document it itself.
ASSIGN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AssignRequest"}}},
    }
}

_WHY = {
    400: "the request is malformed or names something that cannot be (the reason says what)",
    401: "no token, or an unknown, revoked or expired one",
    403: "the caller is not a member of the Cost Allocation Team",
    404: "no such entity, the entity is not a project (or not in one), or the project has no cost allocation",
    409: "the project is being changed concurrently, or the bucket is taken; retry or pick another name",
    503: (
        "the account's general purpose bucket quota is used up (checked before S3 is asked), or S3 refused "
        "or could not be reached; nothing was written"
    ),
}

RETIRE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Reason, "description": "no cost allocation of that id"},
    409: {
        "model": Reason,
        "description": "still in use (projects, AVAILABLE handles, unfinished moves, live objects or archives "
        "in the bucket to delete): the reason says which; nothing was changed",
    },
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of an operation: 400, 401 and 403 for every one, plus `statuses`."""
    return {status: {"model": Reason, "description": _WHY[status]} for status in sorted({400, 401, 403, *statuses})}


def finish_document(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 for every operation with parameters; this API answers invalid input
    with 400 and a reason instead (api.py), so the 422 and its schemas go. The assign body, read by
    hand, gets its schema."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["AssignRequest"] = AssignRequest.model_json_schema()
    return document
