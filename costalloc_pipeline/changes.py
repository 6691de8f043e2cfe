"""Association changes and what they call for: the relocation runs to request, the project
partitions to add and to delete. The reads are here, and the decision is a pure function, so the
sensor (defs/sensors.py) only passes Dagster's state in and the decision out."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from costalloc_pipeline.schema.repository import (
    AssociationState,
    cost_allocation_change,
    cost_allocation_project,
)

# Change ids are allocated before commit, so a later id can become visible first; re-reading a
# short window below the cursor catches those, and run keys keep re-read changes from running twice.
LOOKBACK = 100
MAX_CHANGES_PER_TICK = 1000


@dataclass(frozen=True)
class Change:
    id: int
    project_id: int
    state: str

    @property
    def run_key(self) -> str:
        return f"association-change-{self.id}"

    @property
    def removed(self) -> bool:
        return self.state == AssociationState.REMOVED.value


@dataclass(frozen=True)
class RunRequest:
    run_key: str
    project_id: int


@dataclass(frozen=True)
class Decision:
    runs: list[RunRequest]
    add_projects: list[int]
    # The new high-water mark: the largest change id read.
    cursor: int


def changes_since(conn: Connection, high_water: int) -> list[Change]:
    """Changes above the high-water mark, and the LOOKBACK window below it, oldest first."""
    rows = conn.execute(
        select(cost_allocation_change.c.id, cost_allocation_change.c.project_id, cost_allocation_change.c.state)
        .where(cost_allocation_change.c.id > max(0, high_water - LOOKBACK))
        .order_by(cost_allocation_change.c.id)
        .limit(MAX_CHANGES_PER_TICK)
    )
    return [Change(row.id, row.project_id, row.state) for row in rows]


def associated_projects(conn: Connection) -> list[int]:
    """Every project with an association (ACTIVE or REMOVING), in id order."""
    return list(
        conn.execute(
            select(cost_allocation_project.c.project_id).order_by(cost_allocation_project.c.project_id)
        ).scalars()
    )


def latest_per_project(changes: Sequence[Change]) -> list[Change]:
    """Only the latest change of each project matters: it says where the files belong now."""
    return list({change.project_id: change for change in changes}.values())


def rereads(changes: Sequence[Change], high_water: int) -> list[Change]:
    """The latest changes at or below the high-water mark: they may already have their run."""
    return [c for c in latest_per_project(changes) if not c.removed and c.id <= high_water]


def decide(
    changes: Sequence[Change],
    high_water: int,
    partitions: Collection[int],
    requested_before: Collection[str],
) -> Decision:
    """One relocation run per latest change that is not a removal (unless its run exists: a
    re-read), and a partition for every project that gained an association and has none yet. No
    partition is ever dropped: a project's history stays on it after the project leaves."""
    latest = latest_per_project(changes)
    wanted = [c for c in latest if not c.removed]
    return Decision(
        runs=[RunRequest(c.run_key, c.project_id) for c in wanted if c.run_key not in requested_before],
        add_projects=sorted({c.project_id for c in wanted} - set(partitions)),
        cursor=max([high_water, *(c.id for c in changes)]),
    )
