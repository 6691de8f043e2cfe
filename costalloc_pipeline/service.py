"""The cost allocation service: what the REST API and the CLI do, and what the pipeline asks of it.

Every change to a project's association is also appended to `cost_allocation_change`, and the
association row remembers that change's id (`change_number`): the sensor follows the log by id,
and every write here is conditional on the change number it read, so concurrent callers never
overwrite each other (the loser re-reads and tries again).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from costalloc_pipeline.auth import Caller
from costalloc_pipeline.buckets import provision_bucket
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import new_etag, utcnow
from costalloc_pipeline.errors import BadRequest, Conflict, NotFound
from costalloc_pipeline.naming import (
    bucket_name_for,
    format_entity_id,
    normalise_name,
    parse_entity_id,
)
from costalloc_pipeline.placement import project_allocation
from costalloc_pipeline.schema.repository import (
    AssociationState,
    NodeType,
    cost_allocation,
    cost_allocation_change,
    cost_allocation_project,
    node,
    storage_location,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 100
# Each retry follows a concurrent writer's commit; a handful is plenty.
MAX_ATTEMPTS = 5
# A page token is opaque to clients: the id of the last cost allocation of the page before, as 8
# bytes in URL-safe base64 (11 characters). Every token the pattern admits is a valid place to
# start: its first character keeps the top bit 0, so the id stays in BIGINT's range.
PAGE_TOKEN_PATTERN = "^[A-Za-f][A-Za-z0-9_-]{10}$"
_PAGE_TOKEN = re.compile(PAGE_TOKEN_PATTERN)

Bind = Engine | Connection


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


# --- planning: pure decisions on an association ---------------------------------------------------


@dataclass(frozen=True)
class AssociationChange:
    """One write to a project's association; REMOVED deletes it."""

    state: AssociationState
    cost_allocation_id: int
    # Cost allocations whose project set changes, hence whose etag changes.
    touched: tuple[int, ...]


def plan_assign(current: Association | None, cost_allocation_id: int) -> AssociationChange | None:
    """None when the project is already ACTIVE in that cost allocation (a repeated POST)."""
    if current is None:
        return AssociationChange(AssociationState.ACTIVE, cost_allocation_id, (cost_allocation_id,))
    if current.cost_allocation_id == cost_allocation_id:
        if current.state == AssociationState.ACTIVE:
            return None
        # Cancels a removal in progress: the pipeline moves the files back into the bucket.
        return AssociationChange(AssociationState.ACTIVE, cost_allocation_id, (cost_allocation_id,))
    return AssociationChange(
        AssociationState.ACTIVE, cost_allocation_id, (current.cost_allocation_id, cost_allocation_id)
    )


def plan_unassign(current: Association | None, project_id: int) -> AssociationChange | None:
    """None when a removal is already under way (a repeated DELETE)."""
    if current is None:
        raise NotFound(f"project {format_entity_id(project_id)} has no cost allocation")
    if current.state == AssociationState.REMOVING:
        return None
    return AssociationChange(AssociationState.REMOVING, current.cost_allocation_id, (current.cost_allocation_id,))


def plan_finish_removal(current: Association | None) -> AssociationChange | None:
    """Only a REMOVING association ends; one re-activated meanwhile stays."""
    if current is None or current.state != AssociationState.REMOVING:
        return None
    # Its projects already excluded this one when it became REMOVING: the etag stays.
    return AssociationChange(AssociationState.REMOVED, current.cost_allocation_id, ())


def encode_page_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(last_id.to_bytes(8, "big")).decode("ascii").rstrip("=")


def decode_page_token(token: str) -> int:
    if _PAGE_TOKEN.fullmatch(token) is None:
        raise BadRequest("invalid nextPageToken: pass back the one the previous page returned")
    return int.from_bytes(base64.urlsafe_b64decode(token + "="), "big")


def page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_LIMIT
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE_LIMIT}, got {limit}")
    return limit


# --- database access ------------------------------------------------------------------------------


class _ConcurrentChange(Exception):
    """Another caller changed the association between our read and our write."""


@contextmanager
def _transaction(bind: Bind) -> Iterator[Connection]:
    """An engine gets a transaction of its own; a connection is used as is, its owner commits."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    else:
        yield bind


def _entity_id(entity_id: int | str) -> int:
    return entity_id if isinstance(entity_id, int) else parse_entity_id(entity_id)


def _require_project(conn: Connection, project_id: int) -> None:
    node_type = conn.execute(select(node.c.node_type).where(node.c.id == project_id)).scalar()
    if node_type is None:
        raise NotFound(f"entity {format_entity_id(project_id)} does not exist")
    if node_type != NodeType.PROJECT.value:
        # Not a malformed request: the id is well formed, there is just no such project (404).
        raise NotFound(
            f"entity {format_entity_id(project_id)} is a {node_type.lower()}; only projects have a cost allocation"
        )


def _association(conn: Connection, project_id: int) -> Association | None:
    row = conn.execute(
        select(
            cost_allocation_project.c.cost_allocation_id,
            cost_allocation_project.c.state,
            cost_allocation_project.c.change_number,
        ).where(cost_allocation_project.c.project_id == project_id)
    ).first()
    if row is None:
        return None
    return Association(project_id, row.cost_allocation_id, AssociationState(row.state), row.change_number)


def _load_allocations(
    conn: Connection, condition: ColumnElement[bool], limit: int | None = None
) -> list[CostAllocation]:
    query = select(cost_allocation).where(condition).order_by(cost_allocation.c.id)
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    projects: dict[int, list[int]] = {row.id: [] for row in rows}
    if rows:
        for project_id, allocation_id in conn.execute(
            select(cost_allocation_project.c.project_id, cost_allocation_project.c.cost_allocation_id)
            .where(
                cost_allocation_project.c.cost_allocation_id.in_(list(projects)),
                cost_allocation_project.c.state == AssociationState.ACTIVE.value,
            )
            .order_by(cost_allocation_project.c.project_id)
        ):
            projects[allocation_id].append(project_id)
    return [
        CostAllocation(
            id=row.id,
            name=row.name,
            bucket=row.bucket,
            storage_location_id=row.storage_location_id,
            projects=tuple(projects[row.id]),
            etag=row.etag,
            created_by=row.created_by,
            created_on=row.created_on,
        )
        for row in rows
    ]


def _load_allocation(conn: Connection, allocation_id: int) -> CostAllocation:
    return _load_allocations(conn, cost_allocation.c.id == allocation_id)[0]


def _log_change(
    conn: Connection, project_id: int, change: AssociationChange, changed_by: int | None, now: dt.datetime
) -> int:
    # The table's columns are untyped (Any): the annotation states what the id column holds.
    change_id: int = conn.execute(
        insert(cost_allocation_change)
        .values(
            project_id=project_id,
            cost_allocation_id=change.cost_allocation_id,
            state=change.state.value,
            changed_by=changed_by,
            changed_on=now,
        )
        .returning(cost_allocation_change.c.id)
    ).scalar_one()
    return change_id


def _apply(
    conn: Connection, project_id: int, current: Association | None, change: AssociationChange, changed_by: int | None
) -> None:
    """Writes the change and its log row, or raises _ConcurrentChange having written nothing."""
    now = utcnow()
    if current is None:
        # A concurrent insert of the same project fails on the primary key (IntegrityError): retried.
        conn.execute(
            insert(cost_allocation_project).values(
                project_id=project_id,
                cost_allocation_id=change.cost_allocation_id,
                state=change.state.value,
                change_number=_log_change(conn, project_id, change, changed_by, now),
                updated_on=now,
            )
        )
    else:
        # The guarded write comes first: when it loses, no change row is left behind.
        unchanged = and_(
            cost_allocation_project.c.project_id == project_id,
            cost_allocation_project.c.change_number == current.change_number,
        )
        if change.state == AssociationState.REMOVED:
            written = conn.execute(delete(cost_allocation_project).where(unchanged)).rowcount
        else:
            written = conn.execute(
                update(cost_allocation_project)
                .where(unchanged)
                .values(cost_allocation_id=change.cost_allocation_id, state=change.state.value, updated_on=now)
            ).rowcount
        if written != 1:
            raise _ConcurrentChange
        change_number = _log_change(conn, project_id, change, changed_by, now)
        if change.state != AssociationState.REMOVED:
            conn.execute(
                update(cost_allocation_project)
                .where(cost_allocation_project.c.project_id == project_id)
                .values(change_number=change_number)
            )
    for allocation_id in change.touched:
        conn.execute(update(cost_allocation).where(cost_allocation.c.id == allocation_id).values(etag=new_etag()))


def _insert_allocation(conn: Connection, name: str, bucket: str, caller: Caller) -> int:
    taken = conn.execute(select(storage_location.c.id).where(storage_location.c.bucket == bucket)).first()
    if taken is not None:
        raise Conflict(f"bucket {bucket} is already used by storage location {taken.id}")
    now = utcnow()
    location_id = conn.execute(
        insert(storage_location)
        .values(bucket=bucket, upload_type="S3", description=f"cost allocation {name}", created_on=now)
        .returning(storage_location.c.id)
    ).scalar_one()
    allocation_id: int = conn.execute(
        insert(cost_allocation)
        .values(
            name=name,
            bucket=bucket,
            storage_location_id=location_id,
            created_by=caller.principal_id,
            created_on=now,
            etag=new_etag(),
        )
        .returning(cost_allocation.c.id)
    ).scalar_one()
    return allocation_id


# --- the service ----------------------------------------------------------------------------------


def list_cost_allocations(bind: Bind, limit: int | None = None, page_token: str | None = None) -> Page:
    size = page_limit(limit)
    after = decode_page_token(page_token) if page_token is not None else 0
    with _transaction(bind) as conn:
        found = _load_allocations(conn, cost_allocation.c.id > after, limit=size + 1)
    page = found[:size]
    more = len(found) > size
    return Page(page, encode_page_token(page[-1].id) if more else None)


def get_for_project(bind: Bind, entity_id: int | str) -> CostAllocation:
    project_id = _entity_id(entity_id)
    with _transaction(bind) as conn:
        _require_project(conn, project_id)
        current = _association(conn, project_id)
        if current is None:
            raise NotFound(f"project {format_entity_id(project_id)} has no cost allocation")
        if current.state == AssociationState.REMOVING:
            raise NotFound(
                f"project {format_entity_id(project_id)} is being removed from its cost allocation; "
                "its files are moving back to the default bucket"
            )
        return _load_allocation(conn, current.cost_allocation_id)


def assign(
    bind: Engine, s3: S3Client, settings: Settings, entity_id: int | str, raw_name: object, caller: Caller
) -> AssignResult:
    """Associates the project with the named cost allocation, creating it and its bucket if new.

    A new cost allocation's rows are written first and committed only after its bucket is ready:
    the unique name makes a concurrent creator of the same name wait, then find ours; a bucket
    failure rolls everything back.
    """
    name = normalise_name(raw_name)
    project_id = _entity_id(entity_id)
    bucket = bucket_name_for(settings.stack, name)
    for _ in range(MAX_ATTEMPTS):
        try:
            with bind.begin() as conn:
                _require_project(conn, project_id)
                allocation_id = conn.execute(
                    select(cost_allocation.c.id).where(cost_allocation.c.name == name)
                ).scalar()
                created = allocation_id is None
                if allocation_id is None:
                    allocation_id = _insert_allocation(conn, name, bucket, caller)
                    # Raises on failure, which rolls back the rows above. A bucket left by a failure
                    # after this point (or by a commit that may have happened after all) is ours
                    # and empty: the retry or the next POST re-provisions it in place.
                    provision_bucket(s3, bucket, name, settings)
                # The change row comes last, just before the commit: the sensor follows the log by
                # id, and an id taken early would become visible after later ones.
                current = _association(conn, project_id)
                change = plan_assign(current, allocation_id)
                if change is not None:
                    _apply(conn, project_id, current, change, caller.principal_id)
                return AssignResult(_load_allocation(conn, allocation_id), created)
        except (IntegrityError, _ConcurrentChange):
            continue
    raise Conflict(f"project {format_entity_id(project_id)} is being changed concurrently; retry")


def unassign(bind: Engine, entity_id: int | str, caller: Caller) -> None:
    """Marks the association REMOVING; the pipeline moves the files back, then calls finish_removal."""
    project_id = _entity_id(entity_id)
    for _ in range(MAX_ATTEMPTS):
        try:
            with bind.begin() as conn:
                _require_project(conn, project_id)
                current = _association(conn, project_id)
                change = plan_unassign(current, project_id)
                if change is not None:
                    _apply(conn, project_id, current, change, caller.principal_id)
                return
        except _ConcurrentChange:
            continue
    raise Conflict(f"project {format_entity_id(project_id)} is being changed concurrently; retry")


def association_for_project(bind: Bind, project_id: int) -> Association | None:
    with _transaction(bind) as conn:
        return _association(conn, project_id)


def finish_removal(bind: Bind, project_id: int) -> bool:
    """Deletes a REMOVING association and logs REMOVED. False (nothing written) when the project
    is not REMOVING, e.g. because a POST re-activated it while its files were moving back."""
    with _transaction(bind) as conn:
        current = _association(conn, project_id)
        change = plan_finish_removal(current)
        if change is None:
            return False
        try:
            _apply(conn, project_id, current, change, None)
        except _ConcurrentChange:
            # Changed since we read it: whatever it is now, it is no longer ours to remove.
            return False
        return True


def upload_destination(bind: Bind, entity_id: int | str, caller: Caller) -> UploadDestination:
    """Where a new file under this entity (a project, or anything inside one) must be uploaded."""
    requested = _entity_id(entity_id)
    with _transaction(bind) as conn:
        row = conn.execute(select(node.c.node_type, node.c.project_id).where(node.c.id == requested)).first()
        if row is None:
            raise NotFound(f"entity {format_entity_id(requested)} does not exist")
        project_id = requested if row.node_type == NodeType.PROJECT.value else row.project_id
        if project_id is None:
            raise NotFound(f"entity {format_entity_id(requested)} is not inside a project")
        target, name = project_allocation(conn, project_id)
    # Synapse's own key layout: <uploader id>/<uuid>/<file name>; the uploader adds the rest.
    return UploadDestination(
        entity_id=requested,
        project_id=project_id,
        bucket=target.bucket,
        key_prefix=f"{caller.principal_id}/",
        storage_location_id=target.storage_location_id,
        cost_allocation_name=name,
    )
