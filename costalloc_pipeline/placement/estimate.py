"""How much a project's next run will move, counted before it plans, to size the run (one bundle or many).

One count over the replica's rows for the project's file versions, with the placement rule's own
misplaced condition: cheap (an index range and a semi-join, no rows fetched). Previews and conflicts
are left to planning, so this is an estimate: a wrong one costs time, never correctness, because
every run plans and moves the same way whatever executes its steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, select

from costalloc_pipeline.placement.rule import Placement, connected, misplaced_condition
from costalloc_pipeline.schema.replica import entity_replication, file_replication


@dataclass(frozen=True)
class MisplacedEstimate:
    files: int
    bytes: int

    def fits_one_bundle(self, max_files: int, max_bytes: int) -> bool:
        """Whether planning would make at most one bundle: then nothing can move in parallel."""
        return self.files <= max_files and self.bytes <= max_bytes


def estimate_misplaced(replica: Engine | Connection, project_id: int, placement: Placement) -> MisplacedEstimate:
    """The project's own misplaced handles and their bytes, as the replica has them."""
    own = select(entity_replication.c.file_handle_id).where(entity_replication.c.project_id == project_id)
    misplaced = misplaced_condition(file_replication, placement.target_bucket(project_id), placement.managed_buckets)
    query = select(func.count(), func.coalesce(func.sum(file_replication.c.content_size), 0)).where(
        file_replication.c.id.in_(own), misplaced
    )
    with connected(replica) as conn:
        files, size = conn.execute(query).one()
    return MisplacedEstimate(int(files), int(size))
