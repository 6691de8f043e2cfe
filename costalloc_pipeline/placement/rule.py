"""The one placement rule (DESIGN.md section 4): where a handle belongs, whether it is misplaced, and
when it is a conflict. The planner, the mover, the check, the storage report and the audit all
decide through this module, so they cannot disagree.

- Repository-managed storage is S3 in the default bucket or in any cost allocation's bucket.
- A project's files belong in its allocation's bucket while the association is ACTIVE, else in the
  default bucket (REMOVING, or never assigned).
- A handle belongs where every project that references it (directly, or through a handle whose
  preview it is) wants it. When those projects want different buckets, it is a conflict: it stays.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Engine,
    FromClause,
    Select,
    and_,
    select,
    union,
)

from costalloc_pipeline.errors import NotFound
from costalloc_pipeline.schema.repository import (
    DEFAULT_STORAGE_LOCATION_ID,
    AssociationState,
    FileStatus,
    MetadataType,
    NodeType,
    cost_allocation,
    cost_allocation_project,
    files,
    node,
    node_revision,
    storage_location,
)

# Rows of (file_handle_id, project_id), and queries for handle ids.
ReferenceRow = tuple[int, int]
HandleIdQuery = Select[tuple[int]] | CompoundSelect[tuple[int]]


@dataclass(frozen=True)
class Target:
    bucket: str
    storage_location_id: int


@dataclass(frozen=True)
class Placement:
    """Where every project's files belong, from the repository's association tables."""

    default_bucket: str
    allocation_buckets: frozenset[str]
    # Target bucket of each project with an ACTIVE association; every other project targets the default.
    active_targets: Mapping[int, str]
    # Storage location of each managed bucket.
    locations: Mapping[str, int]

    @property
    def managed_buckets(self) -> frozenset[str]:
        return self.allocation_buckets | {self.default_bucket}

    def target_bucket(self, project_id: int) -> str:
        # A REMOVING project, or one never associated, keeps its files in the default bucket.
        return self.active_targets.get(project_id, self.default_bucket)

    def target(self, project_id: int) -> Target:
        bucket = self.target_bucket(project_id)
        return Target(bucket, self.locations[bucket])

    def is_managed(self, metadata_type: str | None, bucket: str | None) -> bool:
        return metadata_type == MetadataType.S3.value and bucket in self.managed_buckets

    def conflicting(self, project_id: int, others: Iterable[int]) -> list[int]:
        """The other projects referencing a handle of this project that want it in another bucket."""
        target = self.target_bucket(project_id)
        return sorted({other for other in others if other != project_id and self.target_bucket(other) != target})

    def belongs_in(self, projects: Collection[int]) -> str | None:
        """The one bucket all these referencing projects want, or None (no project, or a conflict)."""
        targets = {self.target_bucket(project_id) for project_id in projects}
        return next(iter(targets)) if len(targets) == 1 else None


@contextmanager
def connected(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def load_placement(repository: Engine | Connection) -> Placement:
    with connected(repository) as conn:
        default_bucket = conn.execute(
            select(storage_location.c.bucket).where(storage_location.c.id == DEFAULT_STORAGE_LOCATION_ID)
        ).scalar()
        if default_bucket is None:
            raise NotFound("the default storage location is missing; run `costalloc init` first")
        allocations = conn.execute(select(cost_allocation.c.bucket, cost_allocation.c.storage_location_id)).all()
        active = conn.execute(
            select(cost_allocation_project.c.project_id, cost_allocation.c.bucket)
            .join(cost_allocation, cost_allocation.c.id == cost_allocation_project.c.cost_allocation_id)
            .where(cost_allocation_project.c.state == AssociationState.ACTIVE.value)
        ).all()
    locations = {row.bucket: row.storage_location_id for row in allocations}
    locations[default_bucket] = DEFAULT_STORAGE_LOCATION_ID
    return Placement(
        default_bucket,
        frozenset(row.bucket for row in allocations),
        {row.project_id: row.bucket for row in active},
        locations,
    )


def misplaced_condition(
    handles: FromClause, target_bucket: str, managed_buckets: Collection[str]
) -> ColumnElement[bool]:
    """SQL for "an S3 handle in a managed bucket other than the target bucket"."""
    return and_(
        handles.c.metadata_type == MetadataType.S3.value,
        handles.c.bucket_name.in_(sorted(managed_buckets)),
        handles.c.bucket_name != target_bucket,
    )


def live_condition(handles: FromClause, managed_buckets: Collection[str]) -> ColumnElement[bool]:
    """SQL for "an AVAILABLE S3 handle in repository-managed storage"."""
    return and_(
        handles.c.status == FileStatus.AVAILABLE.value,
        handles.c.metadata_type == MetadataType.S3.value,
        handles.c.bucket_name.in_(sorted(managed_buckets)),
    )


def repository_references() -> Select[ReferenceRow]:
    """(file_handle_id, project_id): every file entity version of the live repository."""
    return (
        select(node_revision.c.file_handle_id.label("file_handle_id"), node.c.project_id.label("project_id"))
        .join(node, node.c.id == node_revision.c.owner_node_id)
        .where(node.c.node_type == NodeType.FILE.value, node_revision.c.file_handle_id.is_not(None))
    )


def preview_holders(handles: FromClause, handle_ids: HandleIdQuery | list[int]) -> Select[tuple[int, int]]:
    """(holder_id, handle_id): each handle that holds one of these handles as its preview.

    `handles` has id and preview_id (file_replication, or files)."""
    holder = handles.alias("holder")
    return select(holder.c.id.label("holder_id"), holder.c.preview_id.label("handle_id")).where(
        holder.c.preview_id.in_(handle_ids),
        # Implied by the IN, but only this bounds an ordered read of the preview index before its
        # NULLs, most of it: a merge join otherwise read past every handle without a preview (3 of
        # the 3.75 million entries of the benchmark's files, 1.1 s of the check's 1.6 s statement).
        holder.c.preview_id.is_not(None),
    )


def referencing_holders(references: FromClause, holders: FromClause) -> Select[ReferenceRow]:
    """(handle_id, project_id) for each project that references a holder of a handle: a project
    references a handle through each of its holders, the handle itself and the handles whose
    preview it is (`preview_holders`).

    `references` has columns file_handle_id and project_id (the replica's entity_replication, or
    `repository_references()`); `holders` has holder_id and handle_id."""
    return select(holders.c.handle_id, references.c.project_id).join(
        references, references.c.file_handle_id == holders.c.holder_id
    )


def referencing_projects(
    references: FromClause, handles: FromClause, handle_ids: HandleIdQuery | list[int]
) -> CompoundSelect[ReferenceRow]:
    """(file_handle_id, project_id) for each project that references one of these handles: directly
    (a file version names it) or through a handle whose preview it is.

    `references` and `handles` as for `referencing_holders` and `preview_holders`."""
    direct = select(references.c.file_handle_id, references.c.project_id).where(
        references.c.file_handle_id.in_(handle_ids)
    )
    return union(direct, referencing_holders(references, preview_holders(handles, handle_ids).subquery("holders")))


def own_handle_ids(references: FromClause, project_id: int) -> Select[tuple[int]]:
    """Ids of the handles the project's file versions name (once per version)."""
    return select(references.c.file_handle_id).where(references.c.project_id == project_id)


def preview_ids(handles: FromClause, handle_ids: HandleIdQuery | None = None) -> Select[tuple[int]]:
    """Ids of the previews of these handles (None: of every handle in `handles`, when it holds only
    the project's): they belong to the projects of their handles."""
    previews = select(handles.c.preview_id).where(handles.c.preview_id.is_not(None))
    return previews if handle_ids is None else previews.where(handles.c.id.in_(handle_ids))


def project_handle_ids(references: FromClause, handles: FromClause, project_id: int) -> CompoundSelect[tuple[int]]:
    """Ids of the project's handles: those its file versions name, and their previews."""
    own = own_handle_ids(references, project_id)
    return union(own, preview_ids(handles, own))


def live_references(conn: Connection, handle_ids: Collection[int]) -> dict[int, set[int]]:
    """Projects referencing each handle now, in the live repository (the replica may be stale)."""
    found: dict[int, set[int]] = {handle_id: set() for handle_id in handle_ids}
    wanted = sorted(found)
    references = repository_references().subquery()
    for start in range(0, len(wanted), 1000):
        query = referencing_projects(references, files, wanted[start : start + 1000])
        for handle_id, project_id in conn.execute(query):
            found[handle_id].add(project_id)
    return found


def project_allocation(conn: Connection, project_id: int) -> tuple[Target, str | None]:
    """The project's target now, and the name of its cost allocation (None: the default bucket),
    read in the caller's transaction."""
    row = conn.execute(
        select(cost_allocation.c.bucket, cost_allocation.c.storage_location_id, cost_allocation.c.name)
        .join(cost_allocation_project, cost_allocation_project.c.cost_allocation_id == cost_allocation.c.id)
        .where(
            cost_allocation_project.c.project_id == project_id,
            cost_allocation_project.c.state == AssociationState.ACTIVE.value,
        )
    ).first()
    if row is not None:
        return Target(row.bucket, row.storage_location_id), row.name
    default_bucket = conn.execute(
        select(storage_location.c.bucket).where(storage_location.c.id == DEFAULT_STORAGE_LOCATION_ID)
    ).scalar()
    if default_bucket is None:
        raise NotFound("the default storage location is missing; run `costalloc init` first")
    return Target(default_bucket, DEFAULT_STORAGE_LOCATION_ID), None


def project_target(conn: Connection, project_id: int) -> Target:
    """The project's target now (the fence of every repoint reads it in its own transaction)."""
    return project_allocation(conn, project_id)[0]
