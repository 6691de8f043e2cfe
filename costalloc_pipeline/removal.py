"""The end of an unassignment: a REMOVING project whose files are all back in the default bucket
leaves its cost allocation (DESIGN.md section 3). The relocation run that brought them back does
this at its end; checks only read."""

from __future__ import annotations

from sqlalchemy import Engine

from costalloc_pipeline import allocations
from costalloc_pipeline.placement.progress import project_progress
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.schema.repository import AssociationState


def finish_removal_when_placed(engine: Engine, project_id: int) -> bool:
    """True when this call removed the project from its cost allocation: it was REMOVING and no
    file of it is misplaced any more. Anything else (ACTIVE, files still moving, a POST that
    re-activated it meanwhile) leaves the association as it is."""
    association = allocations.association_for_project(engine, project_id)
    if association is None or association.state != AssociationState.REMOVING:
        return False
    with engine.connect() as conn:
        progress = project_progress(conn, project_id, load_placement(conn))
    return progress.misplaced_files == 0 and allocations.finish_removal(engine, project_id)
