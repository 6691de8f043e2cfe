"""Planning: pure decisions on a project's association, one AssociationChange (or none) each."""

from __future__ import annotations

from dataclasses import dataclass

from costalloc_pipeline.allocations.model import Association
from costalloc_pipeline.errors import NotFound
from costalloc_pipeline.naming import format_entity_id
from costalloc_pipeline.schema.repository import AssociationState


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
