"""Small repositories written row by row, for the replication and files-out-of-place tests.

`build_scenario` lays out every case the relocation must tell apart (versions sharing a handle,
previews, external handles, a handle shared with a project placed elsewhere, ...) and names each
handle, so that tests can state the expected rows by name.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from sqlalchemy import Engine, insert, select

from costalloc_pipeline.bootstrap import ADMIN_USER, bootstrap
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, new_etag, utcnow
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
    principal,
    storage_location,
)

UNMANAGED_BUCKET = "external-lab-bucket"


@dataclass
class RepositoryBuilder:
    """Writes nodes, revisions, handles and cost allocations straight into a bootstrapped repository."""

    engine: Engine
    # Every row is dated at this moment unless a test says otherwise.
    now: dt.datetime = field(default_factory=utcnow)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    def default_bucket(self) -> str:
        with self.engine.connect() as conn:
            return conn.execute(
                select(storage_location.c.bucket).where(storage_location.c.id == DEFAULT_STORAGE_LOCATION_ID)
            ).scalar_one()

    def project(self, name: str | None = None) -> int:
        project_id = next(self._ids)
        self._node(project_id, name or f"project {project_id}", NodeType.PROJECT, None, project_id)
        return project_id

    def folder(self, project_id: int) -> int:
        folder_id = next(self._ids)
        self._node(folder_id, f"folder {folder_id}", NodeType.FOLDER, project_id, project_id)
        return folder_id

    def handle(
        self,
        bucket: str | None = None,
        *,
        metadata_type: MetadataType = MetadataType.S3,
        size: int | None = 100,
        preview_id: int | None = None,
        key: str | None = None,
        md5: str | None = "0" * 32,
        is_preview: bool = False,
        updated_on: dt.datetime | None = None,
    ) -> int:
        """An S3 handle in the given bucket (the default bucket when None)."""
        handle_id = next(self._ids)
        if metadata_type is MetadataType.S3 and bucket is None:
            bucket = self.default_bucket()
        with self.engine.begin() as conn:
            conn.execute(
                insert(files).values(
                    id=handle_id,
                    etag=new_etag(),
                    preview_id=preview_id,
                    created_on=self.now,
                    created_by=1,
                    updated_on=updated_on or self.now,
                    metadata_type=metadata_type.value,
                    content_type="text/plain",
                    content_size=size,
                    content_md5=md5,
                    bucket_name=bucket,
                    name=f"file{handle_id}.txt",
                    key=key if key is not None else (f"1/{handle_id}/file{handle_id}.txt" if bucket else None),
                    storage_location_id=DEFAULT_STORAGE_LOCATION_ID if bucket else None,
                    endpoint="https://data.example.org" if metadata_type is MetadataType.EXTERNAL else None,
                    is_preview=is_preview,
                    status=FileStatus.AVAILABLE.value,
                )
            )
        return handle_id

    def preview(self, bucket: str | None = None) -> int:
        return self.handle(bucket, size=10, is_preview=True)

    def file_entity(self, project_id: int | None, *versions: int | None, parent_id: int | None = None) -> int:
        """A FILE node whose versions 1..n point at the given handles."""
        entity_id = next(self._ids)
        self._node(entity_id, f"file {entity_id}", NodeType.FILE, parent_id or project_id, project_id)
        with self.engine.begin() as conn:
            for number, handle_id in enumerate(versions, start=1):
                conn.execute(
                    insert(node_revision).values(
                        owner_node_id=entity_id, number=number, file_handle_id=handle_id, modified_on=self.now
                    )
                )
        return entity_id

    def allocation(self, name: str, bucket: str) -> int:
        with self.engine.begin() as conn:
            location_id = conn.execute(
                insert(storage_location)
                .values(bucket=bucket, upload_type="S3", created_on=self.now)
                .returning(storage_location.c.id)
            ).scalar_one()
            admin = conn.execute(select(principal.c.id).where(principal.c.user_name == ADMIN_USER)).scalar_one()
            return conn.execute(
                insert(cost_allocation)
                .values(
                    name=name,
                    bucket=bucket,
                    storage_location_id=location_id,
                    created_by=admin,
                    created_on=self.now,
                    etag=new_etag(),
                )
                .returning(cost_allocation.c.id)
            ).scalar_one()

    def associate(self, project_id: int, allocation_id: int, state: AssociationState = AssociationState.ACTIVE) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(cost_allocation_project).values(
                    project_id=project_id,
                    cost_allocation_id=allocation_id,
                    state=state.value,
                    change_number=1,
                    updated_on=self.now,
                )
            )

    def _node(
        self, node_id: int, name: str, node_type: NodeType, parent_id: int | None, project_id: int | None
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(node).values(
                    id=node_id,
                    name=name,
                    node_type=node_type.value,
                    parent_id=parent_id,
                    project_id=project_id,
                    current_version=1,
                    etag=new_etag(),
                    created_on=self.now,
                    created_by=1,
                    modified_on=self.now,
                )
            )


@dataclass(frozen=True)
class Scenario:
    """Projects, buckets and handles of `build_scenario`, by role."""

    default_bucket: str
    alpha_bucket: str
    beta_bucket: str
    # ACTIVE in alpha.
    alpha_project: int
    # ACTIVE in beta.
    beta_project: int
    # No cost allocation: its files belong in the default bucket.
    plain_project: int
    # REMOVING from alpha: its files go back to the default bucket.
    removing_project: int
    # ACTIVE in alpha too.
    alpha_partner: int
    handles: dict[str, int]

    def ids(self, *names: str) -> set[int]:
        return {self.handles[name] for name in names}


def build_scenario(builder: RepositoryBuilder) -> Scenario:
    default = builder.default_bucket()
    alpha_bucket, beta_bucket = "test-ca-alpha", "test-ca-beta"
    alpha, beta = builder.allocation("alpha", alpha_bucket), builder.allocation("beta", beta_bucket)
    alpha_project, beta_project = builder.project("alpha project"), builder.project("beta project")
    plain_project, removing_project = builder.project("plain project"), builder.project("removing project")
    alpha_partner = builder.project("alpha partner")
    builder.associate(alpha_project, alpha)
    builder.associate(beta_project, beta)
    builder.associate(removing_project, alpha, AssociationState.REMOVING)
    builder.associate(alpha_partner, alpha)

    h: dict[str, int] = {}
    h["preview_1"] = builder.preview()
    h["versioned"] = builder.handle(preview_id=h["preview_1"])
    h["shared_by_versions"] = builder.handle()
    folder = builder.folder(alpha_project)
    # Versions 2 and 3 share a handle; version 4 has none.
    builder.file_entity(
        alpha_project, h["versioned"], h["shared_by_versions"], h["shared_by_versions"], None, parent_id=folder
    )
    h["preview_of_placed"] = builder.preview()
    h["placed"] = builder.handle(alpha_bucket, preview_id=h["preview_of_placed"])
    builder.file_entity(alpha_project, h["placed"])
    h["external_url"] = builder.handle(metadata_type=MetadataType.EXTERNAL, size=None, md5=None)
    builder.file_entity(alpha_project, h["external_url"])
    h["unmanaged"] = builder.handle(UNMANAGED_BUCKET)
    builder.file_entity(alpha_project, h["unmanaged"])
    h["in_beta"] = builder.handle(beta_bucket, size=300)
    builder.file_entity(alpha_project, h["in_beta"])
    # Also used by a project without allocation: it wants it in the default bucket.
    h["shared_with_plain"] = builder.handle(size=4000)
    builder.file_entity(alpha_project, h["shared_with_plain"])
    builder.file_entity(plain_project, h["shared_with_plain"])
    # Also used by a project of the same allocation: no conflict.
    h["shared_with_partner"] = builder.handle()
    builder.file_entity(alpha_project, h["shared_with_partner"])
    builder.file_entity(alpha_partner, h["shared_with_partner"])
    # Its preview is also the preview of another handle of the plain project.
    h["shared_preview"] = builder.preview()
    h["with_shared_preview"] = builder.handle(preview_id=h["shared_preview"])
    builder.file_entity(alpha_project, h["with_shared_preview"])
    h["plain_with_shared_preview"] = builder.handle(preview_id=h["shared_preview"])
    builder.file_entity(plain_project, h["plain_with_shared_preview"])

    h["removing_in_alpha"] = builder.handle(alpha_bucket, size=700)
    h["removing_in_default"] = builder.handle()
    builder.file_entity(removing_project, h["removing_in_alpha"], h["removing_in_default"])
    h["beta_in_default"] = builder.handle()
    builder.file_entity(beta_project, h["beta_in_default"])
    # Not in any project: never replicated.
    h["orphan"] = builder.handle()
    builder.file_entity(None, h["orphan"])
    return Scenario(
        default_bucket=default,
        alpha_bucket=alpha_bucket,
        beta_bucket=beta_bucket,
        alpha_project=alpha_project,
        beta_project=beta_project,
        plain_project=plain_project,
        removing_project=removing_project,
        alpha_partner=alpha_partner,
        handles=h,
    )


def build_awkward_project(builder: RepositoryBuilder, project: int, other: int, target_bucket: str) -> None:
    """Handles of `project` (whose files belong in `target_bucket`) that a reader, a deduplication
    or a join could get wrong; four of them are shared with `other` (directly, or through a
    preview), which makes conflicts when the two projects want different buckets."""
    # Keys that differ only by case or a trailing space are three objects; unicode and a comma,
    # a quote and a newline must survive a CSV round trip; sizes and checksums may be missing.
    for key in ("data/a.txt", "data/A.txt", "data/a.txt ", 'ünï "cødé", ✓\nline 2.csv'):
        builder.file_entity(project, builder.handle(key=key))
    builder.file_entity(project, builder.handle(key="no-size", size=None, md5=None))
    builder.file_entity(project, builder.handle(key="empty-md5", md5=""))
    # One preview shared by three handles of the project, in different entities (and blocks).
    shared = builder.preview()
    for _ in range(3):
        builder.file_entity(project, builder.handle(preview_id=shared))
    # A handle that is the project's own and also the preview of another of its handles.
    own_preview = builder.handle()
    builder.file_entity(project, own_preview, builder.handle(preview_id=own_preview))
    # A placed handle whose preview is misplaced: a block with rows of both kinds.
    builder.file_entity(project, builder.handle(target_bucket, preview_id=builder.preview()))
    # Handles outside managed storage: an external URL, an S3 object in a bucket nobody manages.
    builder.file_entity(project, builder.handle(metadata_type=MetadataType.EXTERNAL, size=None, md5=None))
    builder.file_entity(project, builder.handle(UNMANAGED_BUCKET))
    # A preview whose other owner belongs to another project: a conflict through the preview.
    crossing = builder.preview()
    builder.file_entity(project, builder.handle(preview_id=crossing))
    builder.file_entity(other, builder.handle(preview_id=crossing))
    # A handle the other project references directly: a conflict; a version without a handle.
    both = builder.handle(size=0)
    builder.file_entity(project, both, None)
    builder.file_entity(other, both)
    # Enough plain rows for many blocks of all-misplaced rows.
    for _ in range(40):
        builder.file_entity(project, builder.handle())


def bootstrapped_builder(settings: Settings) -> RepositoryBuilder:
    """A builder on the settings' repository, after `costalloc init`'s bootstrap."""
    bootstrap(settings)
    return RepositoryBuilder(engine_for(settings.repository_url))
