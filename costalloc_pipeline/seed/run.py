"""Writing (I/O): `seed_repository` plans one synthetic repository and writes it into the stack."""

from __future__ import annotations

import time

from sqlalchemy import Connection, func, insert, select

from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, insert_id, utcnow
from costalloc_pipeline.errors import Conflict
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import files, node, storage_location
from costalloc_pipeline.seed.model import PlannedRow, PlanTargets
from costalloc_pipeline.seed.objects import ObjectUploader, ensure_bucket
from costalloc_pipeline.seed.plan import RepositoryPlan
from costalloc_pipeline.seed.report import SeedReport
from costalloc_pipeline.seed.spec import SeedSpec
from costalloc_pipeline.seed.writer import BulkRowWriter


def external_bucket_name(settings: Settings) -> str:
    # Shaped like the default bucket's name, without dots (they break virtual-host TLS).
    return f"{settings.stack}-costalloc-seed-external"


def seed_repository(settings: Settings, spec: SeedSpec) -> SeedReport:
    """Add one synthetic repository beside whatever the stack already holds."""
    spec.validate()
    started = time.monotonic()
    # Bootstrap also provisions the default bucket; the external one is ours to create.
    admin_token = bootstrap(settings).admin_token
    external_bucket = external_bucket_name(settings)
    client = s3_client(settings, max_pool_connections=spec.upload_concurrency)
    ensure_bucket(client, external_bucket, settings.s3_region)
    with engine_for(settings.repository_url).begin() as conn:
        first_entity_id, first_handle_id = _first_free_ids(conn, spec.id_offset)
        targets = PlanTargets(
            first_entity_id=first_entity_id,
            first_handle_id=first_handle_id,
            default_bucket=settings.default_bucket,
            external_bucket=external_bucket,
            external_storage_location_id=_external_storage_location(conn, external_bucket),
            now=utcnow(),
        )
        plan = RepositoryPlan(spec, targets)
        rows = BulkRowWriter(conn)
        with ObjectUploader(client, spec.upload_concurrency) as uploads:
            for item in plan.items():
                if isinstance(item, PlannedRow):
                    rows.add(item)
                elif spec.upload_objects:
                    uploads.put(item)
            rows.flush()
            # The transaction commits only once every object is in place.
            uploads.wait()
    tally = plan.tally
    return SeedReport(
        project_ids=tuple(tally.project_ids),
        nodes=tally.nodes,
        folders=tally.folders,
        file_entities=tally.file_entities,
        revisions=tally.revisions,
        handles=tally.handles,
        objects=uploads.objects,
        object_bytes=uploads.object_bytes,
        shared_within_project=tuple(tally.shared_within_project),
        shared_across_projects=tuple(tally.shared_across_projects),
        same_key_pairs=tuple(tally.same_key_pairs),
        external_handle_ids=tuple(tally.external_handle_ids),
        preview_handle_ids=tuple(tally.preview_handle_ids),
        default_bucket=settings.default_bucket,
        external_bucket=external_bucket,
        external_storage_location_id=targets.external_storage_location_id,
        admin_token=admin_token,
        seconds=time.monotonic() - started,
    )


def _first_free_ids(conn: Connection, id_offset: int | None) -> tuple[int, int]:
    max_entity_id = conn.scalar(select(func.max(node.c.id))) or 0
    max_handle_id = conn.scalar(select(func.max(files.c.id))) or 0
    if id_offset is None:
        return max_entity_id + 1, max_handle_id + 1
    highest = max(max_entity_id, max_handle_id)
    if id_offset < highest:
        raise Conflict(f"id offset {id_offset} is below ids already in use (up to {highest})")
    return id_offset + 1, id_offset + 1


def _external_storage_location(conn: Connection, bucket: str) -> int:
    # The table's columns are untyped (Any): the annotations state what the id column holds.
    found: int | None = conn.scalar(select(storage_location.c.id).where(storage_location.c.bucket == bucket))
    if found is not None:
        return found
    return insert_id(
        conn,
        insert(storage_location).values(
            bucket=bucket,
            upload_type="S3",
            description="external bucket of synthetic data, not repository-managed",
            created_on=utcnow(),
        ),
    )
