"""The Definitions of the costalloc code location, built for given settings."""

from __future__ import annotations

import dagster as dg

from costalloc_pipeline.config import Settings
from costalloc_pipeline.defs import jobs, schedules, sensors
from costalloc_pipeline.defs.assets import (
    checks,
    files_out_of_place,
    invariants,
    recovery,
    relocation,
    replication,
    storage_report,
)
from costalloc_pipeline.defs.executors import executor_for
from costalloc_pipeline.defs.resources.databases import Database, RepositoryDatabase
from costalloc_pipeline.defs.resources.io_manager import ParquetIOManager
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.defs.resources.settings import CostAllocSettings

# Each module declares its own definitions; they meet here, with the schedules and the resources,
# which depend on the settings.
MODULES = (
    replication,
    files_out_of_place,
    relocation,
    storage_report,
    checks,
    invariants,
    recovery,
    jobs,
    sensors,
)


def build_resources(settings: Settings) -> dict[str, object]:
    embedded = settings.s3_endpoint_url is None and not settings.real_s3
    s3 = RepositoryS3(
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        max_pool_connections=2 * settings.copy_concurrency,
        embedded_data_dir=str(settings.data_dir) if embedded else None,
    )
    return {
        "settings": CostAllocSettings.from_settings(settings),
        "repository": RepositoryDatabase(
            url=settings.repository_url,
            cloudwatch_namespace=settings.cloudwatch_namespace,
            cloudwatch_endpoint_url=settings.s3_endpoint_url,
            cloudwatch_region=settings.s3_region,
            embedded_data_dir=str(settings.data_dir) if embedded else None,
        ),
        "replica": Database(url=settings.replica_url),
        "s3": s3,
        "parquet_io_manager": ParquetIOManager(
            base_dir=str(settings.data_dir / "storage"),
            s3_bucket=settings.dataset_bucket,
            s3=s3 if settings.dataset_bucket else None,
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        *(module.defs for module in MODULES),
        schedules.definitions(settings),
        # Every job's executor: COSTALLOC_EXECUTOR, by default sized by the run's project.
        dg.Definitions(resources=build_resources(settings), executor=executor_for(settings)),
    )
