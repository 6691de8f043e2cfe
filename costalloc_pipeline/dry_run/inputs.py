"""What a dry run reads: the project and its would-be target, its misplaced handles (the live
repository), what S3 lists at the sources, and which source objects other handles keep live. Only reads:
no row, object or bucket is written.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select, tuple_

# The store's own check, so that the plan refuses exactly the entities `assign` refuses.
from costalloc_pipeline.allocations.store import require_project
from costalloc_pipeline.mover.handles import Handle, read_handles, skip_reason
from costalloc_pipeline.mover.objects import ObjectFacts, stat_objects
from costalloc_pipeline.naming import bucket_name_for, normalise_name
from costalloc_pipeline.placement.rule import (
    Placement,
    Target,
    live_condition,
    live_references,
    project_allocation,
    project_handle_ids,
    repository_references,
)
from costalloc_pipeline.schema.repository import FileStatus, cost_allocation, files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Object = tuple[str, str]
# Handles per read: well under every backend's limit of bound parameters.
_HANDLES_PER_READ = 1000
# (bucket, key) pairs per query: well under every backend's limit of bound parameters.
_OBJECTS_PER_QUERY = 500


@dataclass(frozen=True)
class PlanTarget:
    """Where the project's files would go, and where they belong now."""

    # The normalised cost allocation name; None: back to the default bucket.
    name: str | None
    bucket: str
    # False when the cost allocation (and its bucket) would be created by the assignment.
    exists: bool
    current_name: str | None
    current_bucket: str


def resolve_target(
    conn: Connection, stack: str, default_bucket: str, project_id: int, raw_name: str | None
) -> PlanTarget:
    """The target of assigning the project to `raw_name` (None: of unassigning it). Raises
    BadRequest for an invalid name, NotFound for an entity that is no project."""
    name = None if raw_name is None else normalise_name(raw_name)
    require_project(conn, project_id)
    current, current_name = project_allocation(conn, project_id)
    if name is None:
        return PlanTarget(None, default_bucket, True, current_name, current.bucket)
    bucket = conn.execute(select(cost_allocation.c.bucket).where(cost_allocation.c.name == name)).scalar()
    # A new name: the bucket `assign` would create for it (the same derivation, naming.py).
    return PlanTarget(name, bucket or bucket_name_for(stack, name), bucket is not None, current_name, current.bucket)


def placement_with(placement: Placement, project_id: int, bucket: str) -> Placement:
    """Pure: the placement as it would be once the project targets `bucket`, all else unchanged.
    The default bucket means no ACTIVE association (unassigned, or REMOVING)."""
    targets = {other: target for other, target in placement.active_targets.items() if other != project_id}
    if bucket == placement.default_bucket:
        return replace(placement, active_targets=targets)
    # A bucket that does not exist yet holds no handle: only the target changes. It has no storage
    # location yet either; the placement rule compares buckets only.
    return replace(
        placement,
        active_targets={**targets, project_id: bucket},
        allocation_buckets=placement.allocation_buckets | {bucket},
    )


@dataclass(frozen=True)
class OutOfPlace:
    """The project's misplaced handles in the live repository, decided by the mover's own rule."""

    to_move: list[Handle]
    # Each conflicting handle with the other projects that want it in another bucket.
    conflicts: list[tuple[Handle, list[int]]]
    # Why other misplaced handles would be left alone, with their counts.
    skipped: dict[str, int]


def live_out_of_place(conn: Connection, project_id: int, placement: Placement) -> OutOfPlace:
    """What the relocation run of the project would move under `placement`, read from the live
    repository: the run refreshes the replica before it plans, so the live rows are what it will
    see (the replica itself may lag by a whole run). Each handle goes through `skip_reason`, the
    mover's first step, so the plan and the mover decide alike."""
    target_bucket = placement.target_bucket(project_id)
    misplaced = conn.execute(
        select(files.c.id).where(
            files.c.id.in_(project_handle_ids(repository_references().subquery(), files, project_id)),
            live_condition(files, placement.managed_buckets),
            files.c.bucket_name != target_bucket,
        )
    )
    ids = sorted(misplaced.scalars())
    handles = [
        h
        for start in range(0, len(ids), _HANDLES_PER_READ)
        for h in read_handles(conn, ids[start : start + _HANDLES_PER_READ])
    ]
    references = live_references(conn, ids)
    # A new bucket has no storage location yet (0 here); the rule compares buckets only.
    rule_target = Target(target_bucket, placement.locations.get(target_bucket, 0))
    to_move: list[Handle] = []
    conflicts: list[tuple[Handle, list[int]]] = []
    skipped: dict[str, int] = {}
    for handle in sorted(handles, key=lambda h: h.id):
        others = placement.conflicting(project_id, references[handle.id])
        reason = skip_reason(handle, project_id, references[handle.id], placement, rule_target)
        if others:
            conflicts.append((handle, others))
        elif reason is None:
            to_move.append(handle)
        else:
            skipped[reason] = skipped.get(reason, 0) + 1
    return OutOfPlace(to_move, conflicts, dict(sorted(skipped.items())))


def source_facts(s3: S3Client, objects: Iterable[Object]) -> dict[Object, ObjectFacts | None]:
    """What S3 lists at each source (None: no such object), by the mover's own listing."""
    keys_by_bucket: dict[str, set[str]] = {}
    for bucket, key in objects:
        keys_by_bucket.setdefault(bucket, set()).add(key)
    found: dict[Object, ObjectFacts | None] = {}
    for bucket, keys in sorted(keys_by_bucket.items()):
        found.update({(bucket, key): facts for key, facts in stat_objects(s3, bucket, keys).items()})
    return found


def kept_live(conn: Connection, sources: Mapping[Object, Collection[int]]) -> set[Object]:
    """The source objects an AVAILABLE handle other than the moving ones (`sources`: the moving
    handle ids of each object) still names: they are not archived after the move (I2)."""
    wanted = sorted(sources)
    kept: set[Object] = set()
    for start in range(0, len(wanted), _OBJECTS_PER_QUERY):
        query = select(files.c.id, files.c.bucket_name, files.c.key).where(
            tuple_(files.c.bucket_name, files.c.key).in_(wanted[start : start + _OBJECTS_PER_QUERY]),
            files.c.status == FileStatus.AVAILABLE.value,
        )
        kept.update(
            (bucket, key) for handle_id, bucket, key in conn.execute(query) if handle_id not in sources[(bucket, key)]
        )
    return kept
