"""The operations: what the REST API and the CLI do, and what the pipeline asks of the service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, OperationalError

from costalloc_pipeline.allocations.model import AssignResult, Association, CostAllocation, Page, UploadDestination
from costalloc_pipeline.allocations.paging import decode_page_token, encode_page_token, page_limit
from costalloc_pipeline.allocations.planning import plan_assign, plan_finish_removal, plan_unassign
from costalloc_pipeline.allocations.store import (
    Bind,
    _apply,
    _association,
    _ConcurrentChange,
    _entity_id,
    _insert_allocation,
    _load_allocation,
    _load_allocations,
    _transaction,
    require_project,
)
from costalloc_pipeline.auth import Caller
from costalloc_pipeline.buckets import provision_bucket
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import lost_a_race
from costalloc_pipeline.errors import Conflict, NotFound
from costalloc_pipeline.headroom import require_room_for
from costalloc_pipeline.naming import bucket_name_for, format_entity_id, normalise_name
from costalloc_pipeline.placement.rule import project_allocation
from costalloc_pipeline.schema.repository import AssociationState, NodeType, cost_allocation, node

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Each retry follows a concurrent writer's commit; a handful is plenty.
MAX_ATTEMPTS = 5


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
        require_project(conn, project_id)
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
                require_project(conn, project_id)
                # Locked before the association names it: concurrent assigns to one cost allocation
                # queue here instead of deadlocking on MySQL (each holding its foreign key's shared
                # lock on the row, each waiting to update its etag), and a retire that deleted it
                # meanwhile leaves nothing to find.
                allocation_id = conn.execute(
                    select(cost_allocation.c.id).where(cost_allocation.c.name == name).with_for_update()
                ).scalar()
                created = allocation_id is None
                if allocation_id is None:
                    # Before any write, and before AWS would refuse: a full account is a 503 with a reason.
                    require_room_for(s3, settings, bucket)
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
        except OperationalError as error:
            if not lost_a_race(error):
                raise
    raise Conflict(f"project {format_entity_id(project_id)} is being changed concurrently; retry")


def unassign(bind: Engine, entity_id: int | str, caller: Caller) -> None:
    """Marks the association REMOVING; the pipeline moves the files back, then calls finish_removal."""
    project_id = _entity_id(entity_id)
    for _ in range(MAX_ATTEMPTS):
        try:
            with bind.begin() as conn:
                require_project(conn, project_id)
                current = _association(conn, project_id)
                change = plan_unassign(current, project_id)
                if change is not None:
                    _apply(conn, project_id, current, change, caller.principal_id)
                return
        except _ConcurrentChange:
            continue
        except OperationalError as error:
            if not lost_a_race(error):
                raise
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
