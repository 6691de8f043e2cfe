"""Pure: the moves grouped (by source bucket, by storage class) and the conflicts by other project."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from costalloc_pipeline.dry_run.traffic import Move
from costalloc_pipeline.mover.handles import Handle
from costalloc_pipeline.placement.rule import Placement

# Handle ids listed per conflict, so that a person can look at a few.
FIRST_IDS = 5


@dataclass(frozen=True)
class Share:
    name: str
    files: int
    # Distinct source objects, and their bytes (handles on one object count its bytes once).
    objects: int
    bytes: int


def shares_by(moves: Iterable[Move], group: Callable[[Move], str]) -> list[Share]:
    handles: dict[str, int] = {}
    objects: dict[str, dict[tuple[str, str], int]] = {}
    for move in moves:
        name = group(move)
        handles[name] = handles.get(name, 0) + 1
        objects.setdefault(name, {})[move.source] = move.size
    return [
        Share(name, handles[name], len(objects[name]), sum(objects[name].values()))
        for name in sorted(handles, key=lambda name: (-sum(objects[name].values()), name))
    ]


@dataclass(frozen=True)
class Conflict:
    """Misplaced handles of the project that another project also uses and wants elsewhere."""

    other_project_id: int
    other_target_bucket: str
    # Why the other project wants them there.
    reason: str
    files: int
    bytes: int
    first_handle_ids: list[int]


def conflicts_of(conflicts: Iterable[tuple[Handle, list[int]]], placement: Placement) -> list[Conflict]:
    """Conflicting handles (each with the other projects that want it elsewhere), by other project."""
    by_other: dict[int, list[Handle]] = {}
    for handle, others in conflicts:
        for other in others:
            by_other.setdefault(other, []).append(handle)
    return [
        Conflict(
            other_project_id=other,
            other_target_bucket=placement.target_bucket(other),
            reason="its cost allocation's bucket"
            if other in placement.active_targets
            else "the default bucket (no cost allocation)",
            files=len(handles),
            bytes=sum(handle.size or 0 for handle in handles),
            first_handle_ids=sorted(handle.id for handle in handles)[:FIRST_IDS],
        )
        for other, handles in sorted(by_other.items())
    ]


def conflict_totals(conflicts: Iterable[tuple[Handle, list[int]]]) -> tuple[int, int]:
    """Conflicting handles and their bytes (a handle may conflict with several projects)."""
    handles = [handle for handle, _ in conflicts]
    return len(handles), sum(handle.size or 0 for handle in handles)
