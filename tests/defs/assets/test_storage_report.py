"""The storage report: files and bytes per cost allocation bucket, from the live repository."""

import dagster as dg
import pytest
from helpers.repository_builder import Scenario, bootstrapped_builder, build_scenario
from sqlalchemy import update

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.defs.assets.storage_report import cost_allocation_storage
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.defs.resources.settings import CostAllocSettings
from costalloc_pipeline.schema.repository import FileStatus, files
from costalloc_pipeline.storage import bucket_usage


@pytest.fixture
def scenario(settings: Settings) -> Scenario:
    return build_scenario(bootstrapped_builder(settings))


def test_report_counts_available_handles_per_managed_bucket(settings, scenario):
    # An UNLINKED handle is no longer billed to anyone the report can name.
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(
            update(files).where(files.c.id == scenario.handles["placed"]).values(status=FileStatus.UNLINKED.value)
        )
    builder = bootstrapped_builder(settings)
    builder.allocation("unused", "test-ca-unused")

    result = dg.materialize(
        [cost_allocation_storage],
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "repository": RepositoryDatabase(url=settings.repository_url),
            "s3": RepositoryS3(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region),
            "settings": CostAllocSettings.from_settings(settings),
        },
    )

    assert result.success
    [materialization] = result.asset_materializations_for_node("cost_allocation_storage")
    # The bucket headroom's figures are tested in tests/headroom.
    assert materialization.metadata["bucket_quota"].value == settings.bucket_quota
    headroom = (
        "buckets_used",
        "bucket_quota",
        "bucket_quota_source",
        "bucket_headroom",
        "buckets_percent_used",
        "cost_allocation_buckets",
    )
    tables = ("buckets", "projects_moving", *headroom)
    metadata = {key: value.value for key, value in materialization.metadata.items() if key not in tables}
    # Default bucket: 8 handles of 100 bytes, 3 previews of 10, one of 4000 (external ones excluded).
    assert metadata == {
        "default_bucket_files": 12,
        "default_bucket_bytes": 8 * 100 + 3 * 10 + 4000,
        "allocated_files": 2,
        "allocated_bytes": 700 + 300,
        "total_files": 14,
        "total_bytes": 4830 + 1000,
        "files:alpha": 1,
        "bytes:alpha": 700,
        "files:beta": 1,
        "bytes:beta": 300,
        "files:unused": 0,
        "bytes:unused": 0,
        # Misplaced: alpha's 7 (720 bytes; see test_misplaced), beta's one in the default bucket,
        # the REMOVING project's one still in alpha, and the alpha partner's share.
        "moving_projects": 4,
        "misplaced_bytes": 720 + 100 + 700 + 100,
    }
    moving = [record.data for record in materialization.metadata["projects_moving"].value.records]
    assert [(m["project"], m["cost_allocation"], m["misplaced_files"], m["misplaced_bytes"]) for m in moving] == [
        (f"syn{scenario.alpha_project}", "alpha", 7, 720),
        (f"syn{scenario.beta_project}", "beta", 1, 100),
        (f"syn{scenario.removing_project}", "(default bucket)", 1, 700),
        (f"syn{scenario.alpha_partner}", "alpha", 1, 100),
    ]
    table = materialization.metadata["buckets"].value
    assert [record.data["cost_allocation"] for record in table.records] == [
        "(default bucket)",
        "alpha",
        "beta",
        "unused",
    ]
    assert [record.data["active_projects"] for record in table.records] == [0, 2, 1, 0]


def test_usage_of_an_empty_repository_is_all_zero(settings):
    bootstrapped_builder(settings)

    [default] = bucket_usage(engine_for(settings.repository_url))

    assert (default.cost_allocation, default.bucket, default.files, default.bytes) == (
        None,
        "test-costalloc-default",
        0,
        0,
    )
