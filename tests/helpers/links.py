"""Make a file handle one of a project's: a FILE entity of the project whose version names it.

The mover decides on the live repository which project a handle belongs to (the placement rule),
so a test's handle must be some project's file to be moved at all."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert

from costalloc_pipeline.db import new_etag, utcnow
from costalloc_pipeline.schema.repository import (
    NodeType,
    node,
    node_revision,
    relocation_lease,
)

# Entity ids of these files sit far above the ids the tests give projects and handles.
_FILE_ENTITY_BASE = 9_000_000


def link_to_project(engine: Engine, handle_id: int, project_id: int, entity_id: int | None = None) -> int:
    entity_id = entity_id if entity_id is not None else _FILE_ENTITY_BASE + handle_id
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(node).values(
                id=entity_id,
                name=f"file {entity_id}",
                node_type=NodeType.FILE.value,
                parent_id=project_id,
                project_id=project_id,
                current_version=1,
                etag=new_etag(),
                created_on=now,
                created_by=1,
                modified_on=now,
            )
        )
        conn.execute(
            insert(node_revision).values(owner_node_id=entity_id, number=1, file_handle_id=handle_id, modified_on=now)
        )
    return entity_id


def end_earlier_runs(engine: Engine, project_id: int) -> None:
    """Tests run one relocation after another: the earlier ones are over, their leases given back."""
    with engine.begin() as conn:
        conn.execute(delete(relocation_lease).where(relocation_lease.c.project_id == project_id))
