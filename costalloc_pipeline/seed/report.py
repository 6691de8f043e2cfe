"""The report of one seed: what it added and where the special cases are."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedReport:
    """What one seed added. `objects`/`object_bytes` count distinct uploads (0 with no objects);
    the id tuples name the special cases so tests and the demo can find them."""

    project_ids: tuple[int, ...]
    nodes: int
    folders: int
    file_entities: int
    revisions: int
    handles: int
    objects: int
    object_bytes: int
    shared_within_project: tuple[int, ...]
    shared_across_projects: tuple[int, ...]
    same_key_pairs: tuple[tuple[int, int], ...]
    external_handle_ids: tuple[int, ...]
    preview_handle_ids: tuple[int, ...]
    default_bucket: str
    external_bucket: str
    external_storage_location_id: int
    # Set only when this seed bootstrapped the stack: the admin token is shown once.
    admin_token: str | None
    seconds: float
