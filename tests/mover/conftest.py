"""A tiny repository for the mover: handles in files, their objects in moto's S3."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from helpers.links import end_earlier_runs, link_to_project
from helpers.rows import s3_file_row
from sqlalchemy import Engine, insert, select, update

from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.buckets import lifecycle_configuration
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, new_etag, utcnow
from costalloc_pipeline.mover.context import MoveContext, move_context
from costalloc_pipeline.mover.copier import CopyOptions
from costalloc_pipeline.mover.lease import acquire
from costalloc_pipeline.placement.rule import Target
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import (
    AssociationState,
    FileStatus,
    MetadataType,
    cost_allocation,
    cost_allocation_project,
    files,
    move_ledger,
    principal,
    storage_location,
)

TARGET_BUCKET = "test-ca-target"
EXTERNAL_BUCKET = "someone-elses-bucket"


@dataclass
class World:
    settings: Settings
    repository: Engine
    s3: Any
    target: Target
    ids: itertools.count

    def add_handle(
        self,
        body: bytes,
        bucket: str | None = None,
        key: str | None = None,
        upload: bool = True,
        metadata_type: str = MetadataType.S3.value,
        status: str = FileStatus.AVAILABLE.value,
        project_id: int | None = 1,
    ) -> int:
        handle_id = next(self.ids)
        bucket = bucket or self.settings.default_bucket
        key = key or f"1/{new_etag()}/file{handle_id}.bin"
        if upload:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        location = 1 if bucket == self.settings.default_bucket else None
        row = s3_file_row(
            handle_id, bucket, key, body, storage_location_id=location, metadata_type=metadata_type, status=status
        )
        with self.repository.begin() as conn:
            conn.execute(insert(files).values(**row))
        if project_id is not None:
            link_to_project(self.repository, handle_id, project_id)
        return handle_id

    def handle(self, handle_id: int):
        with self.repository.connect() as conn:
            return conn.execute(select(files).where(files.c.id == handle_id)).one()

    def read(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def storage_class(self, bucket: str, key: str) -> str:
        return self.s3.head_object(Bucket=bucket, Key=key).get("StorageClass", "STANDARD")

    def context(self, run_id: str = "run-1", **overrides: Any) -> MoveContext:
        """A run of project 1 toward its target now, holding the project's lease."""
        values: dict[str, Any] = {
            "copy": CopyOptions(multipart_threshold=5 * 1024**3, part_size=512 * 1024**2),
            "concurrency": 8,
        }
        values.update(overrides)
        ctx = move_context(self.settings, self.repository, self.s3, 1, run_id, **values)
        end_earlier_runs(self.repository, 1)
        acquire(self.repository, 1, run_id, ctx.target.bucket, ctx.clock(), ctx.lease_seconds)
        return ctx

    def version(self, bucket: str) -> None:
        """Versioning on, with costalloc's noncurrent-version rule: the bucket's archives become
        DeleteObjects (mover/archive_method.py)."""
        self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration=lifecycle_configuration(self.settings, versioned=True)
        )

    def ledger_rows(self, handle_id: int) -> list[Any]:
        with self.repository.connect() as conn:
            return list(
                conn.execute(
                    select(move_ledger).where(move_ledger.c.file_handle_id == handle_id).order_by(move_ledger.c.id)
                )
            )

    def unassign(self) -> None:
        """Project 1 leaves its allocation: its files belong in the default bucket again."""
        with self.repository.begin() as conn:
            conn.execute(
                update(cost_allocation_project)
                .where(cost_allocation_project.c.project_id == 1)
                .values(state=AssociationState.REMOVING.value)
            )


@pytest.fixture
def world(settings: Settings) -> World:
    bootstrap(settings)
    s3 = s3_client(settings, max_pool_connections=16)
    for bucket in (settings.default_bucket, TARGET_BUCKET, EXTERNAL_BUCKET):
        s3.create_bucket(Bucket=bucket)
    repository = engine_for(settings.repository_url)
    with repository.begin() as conn:
        location = conn.execute(
            insert(storage_location)
            .values(bucket=TARGET_BUCKET, upload_type="S3", created_on=utcnow())
            .returning(storage_location.c.id)
        ).scalar_one()
        # Project 1 is assigned to an allocation whose bucket is the target bucket.
        allocation = conn.execute(
            insert(cost_allocation)
            .values(
                name="target",
                bucket=TARGET_BUCKET,
                storage_location_id=location,
                created_by=conn.execute(select(principal.c.id)).scalars().first(),
                created_on=utcnow(),
                etag=new_etag(),
            )
            .returning(cost_allocation.c.id)
        ).scalar_one()
        conn.execute(
            insert(cost_allocation_project).values(
                project_id=1,
                cost_allocation_id=allocation,
                state=AssociationState.ACTIVE.value,
                change_number=1,
                updated_on=utcnow(),
            )
        )
    return World(settings, repository, s3, Target(TARGET_BUCKET, location), itertools.count(1000))
