"""Database access: reads of associations and cost allocations, and the conditional, logged writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, insert, select, update

from costalloc_pipeline.allocations.model import Association, CostAllocation
from costalloc_pipeline.allocations.planning import AssociationChange
from costalloc_pipeline.auth import Caller
from costalloc_pipeline.db import insert_id, new_etag, utcnow
from costalloc_pipeline.errors import Conflict, NotFound
from costalloc_pipeline.naming import format_entity_id, parse_entity_id
from costalloc_pipeline.schema.repository import (
    AssociationState,
    NodeType,
    cost_allocation,
    cost_allocation_change,
    cost_allocation_project,
    node,
    storage_location,
)

Bind = Engine | Connection


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


def require_project(conn: Connection, project_id: int) -> None:
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
    return insert_id(
        conn,
        insert(cost_allocation_change).values(
            project_id=project_id,
            cost_allocation_id=change.cost_allocation_id,
            state=change.state.value,
            changed_by=changed_by,
            changed_on=now,
        ),
    )


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
    taken = conn.execute(
        select(storage_location.c.id, cost_allocation.c.name)
        .select_from(
            storage_location.outerjoin(cost_allocation, cost_allocation.c.storage_location_id == storage_location.c.id)
        )
        .where(storage_location.c.bucket == bucket)
    ).first()
    if taken is not None:
        if taken.name == name:
            # A concurrent assign of the same new name committed it after this transaction looked
            # the name up: the next attempt finds it (the bucket is the name's own).
            raise _ConcurrentChange
        raise Conflict(f"bucket {bucket} is already used by storage location {taken.id}")
    now = utcnow()
    location_id = insert_id(
        conn,
        insert(storage_location).values(
            bucket=bucket, upload_type="S3", description=f"cost allocation {name}", created_on=now
        ),
    )
    return insert_id(
        conn,
        insert(cost_allocation).values(
            name=name,
            bucket=bucket,
            storage_location_id=location_id,
            created_by=caller.principal_id,
            created_on=now,
            etag=new_etag(),
        ),
    )
