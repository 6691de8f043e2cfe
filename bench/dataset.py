"""Data set-up of the move race: one seeded project, assigned to a cost allocation, on fresh servers.

Every tool in every round gets a stage of its own, built the same way from the same random seed:
the same keys, bytes, buckets and handle ids. The peers move the stage's objects between its two
buckets; costalloc relocates the project, whose handles point at those objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.servers import MotoServer, PostgresDatabases
from costalloc_pipeline import allocations
from costalloc_pipeline.auth import admin_caller
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.replica.refresh import (
    refresh_entity_replication,
    refresh_file_replication,
)
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.seed import SeedSpec, seed_repository

STACK = "bench"
COST_ALLOCATION = "benchmark"
UPLOAD_CONCURRENCY = 16


@dataclass(frozen=True)
class MoveStage:
    """One prepared race lane: a project of `files` objects in `source_bucket`, assigned to the
    cost allocation whose bucket is `target_bucket`."""

    settings: Settings
    project_id: int
    source_bucket: str
    target_bucket: str
    files: int
    object_size: int


def project_spec(files: int, object_size: int) -> SeedSpec:
    """One project, one version per file, every handle in the default bucket: nothing for costalloc
    to skip and nothing the peers would not move."""
    return SeedSpec(
        projects=1,
        folders_per_project=1,
        files_per_folder=files,
        versions_per_file=1,
        preview_share=0.0,
        shared_within_project=0,
        shared_across_projects=0,
        same_key_pairs=0,
        external_share=0.0,
        min_size=object_size,
        max_size=object_size,
        upload_concurrency=UPLOAD_CONCURRENCY,
    )


def stage_settings(endpoint: str, database_url: str, data_dir: Path, concurrency: int | None) -> Settings:
    settings = Settings(
        data_dir=data_dir,
        repository_url=database_url,
        replica_url=database_url,
        s3_endpoint_url=endpoint,
        stack=STACK,
        # The race times the whole protocol, archive included, as the peers' moves delete at once.
        archive_grace_seconds=0,
        # Every lane's default bucket is versioned (the peers' deletes leave delete markers, as they
        # would there on S3): costalloc's archives are DeleteObjects unless its lane says copy.
        default_bucket_versioning="enable",
    )
    return settings if concurrency is None else settings.with_changes(copy_concurrency=concurrency)


def prepare_move(
    moto: MotoServer,
    databases: PostgresDatabases,
    data_dir: Path,
    files: int,
    object_size: int,
    concurrency: int | None,
) -> MoveStage:
    """Empty S3, a new database, the seeded project, its cost allocation, an up-to-date replica."""
    moto.reset()
    url = databases.fresh()
    settings = stage_settings(moto.endpoint, url, data_dir, concurrency)
    report = seed_repository(settings, project_spec(files, object_size))
    project_id = report.project_ids[0]
    repository = engine_for(url)
    with repository.connect() as conn:
        caller = admin_caller(conn)
    assigned = allocations.assign(repository, s3_client(settings), settings, project_id, COST_ALLOCATION, caller)
    # The replica is the pipeline's upstream asset, refreshed once for all projects: not part of a
    # project's relocation.
    refresh_entity_replication(repository, repository)
    refresh_file_replication(repository, repository)
    return MoveStage(
        settings=settings,
        project_id=project_id,
        source_bucket=settings.default_bucket,
        target_bucket=assigned.cost_allocation.bucket,
        files=files,
        object_size=object_size,
    )


def discard(stage: MoveStage, databases: PostgresDatabases) -> None:
    databases.drop(stage.settings.repository_url)
