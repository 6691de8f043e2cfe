"""The Definitions of the costalloc code location, built for given settings."""

from __future__ import annotations

import dagster as dg

from costalloc_pipeline.assets.checks import no_misplaced_files
from costalloc_pipeline.assets.files_out_of_place import files_out_of_place
from costalloc_pipeline.assets.invariants import invariants_hold
from costalloc_pipeline.assets.recovery import finish_moves
from costalloc_pipeline.assets.relocation import relocation
from costalloc_pipeline.assets.replication import entity_replication, file_replication
from costalloc_pipeline.assets.storage_report import cost_allocation_storage
from costalloc_pipeline.config import Settings
from costalloc_pipeline.jobs import audit_repository, relocate_project, report_storage
from costalloc_pipeline.resources.databases import Database
from costalloc_pipeline.resources.io_manager import ParquetIOManager
from costalloc_pipeline.resources.s3 import RepositoryS3
from costalloc_pipeline.resources.settings import CostAllocSettings
from costalloc_pipeline.schedules import (
    audit_repository_daily,
    finish_moves_daily,
    report_storage_hourly,
    rescan_projects,
)
from costalloc_pipeline.sensors import cost_allocation_changes


def build_resources(settings: Settings) -> dict[str, object]:
    s3 = RepositoryS3(
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        max_pool_connections=2 * settings.copy_concurrency,
    )
    return {
        "settings": CostAllocSettings.from_settings(settings),
        "repository": Database(url=settings.repository_url),
        "replica": Database(url=settings.replica_url),
        "s3": s3,
        "parquet_io_manager": ParquetIOManager(
            base_dir=str(settings.data_dir / "storage"),
            s3_bucket=settings.dataset_bucket,
            s3=s3 if settings.dataset_bucket else None,
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[entity_replication, file_replication, files_out_of_place, relocation, cost_allocation_storage],
        asset_checks=[no_misplaced_files, invariants_hold],
        jobs=[relocate_project, report_storage, audit_repository, finish_moves],
        sensors=[cost_allocation_changes],
        schedules=[rescan_projects, finish_moves_daily, report_storage_hourly, audit_repository_daily],
        resources=build_resources(settings),
    )
