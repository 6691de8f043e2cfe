"""The replication assets, materialized by Dagster against real databases."""

import dagster as dg
import pytest
from helpers.repository_builder import RepositoryBuilder, bootstrapped_builder

from costalloc_pipeline.config import Settings
from costalloc_pipeline.defs.assets.replication import ReplicationConfig, entity_replication, file_replication
from costalloc_pipeline.defs.resources.databases import Database


@pytest.fixture
def builder(settings: Settings) -> RepositoryBuilder:
    return bootstrapped_builder(settings)


def _materialize(settings: Settings, instance: dg.DagsterInstance, full_refresh: bool = False) -> dict[str, dict]:
    config = ReplicationConfig(full_refresh=full_refresh)
    result = dg.materialize(
        [entity_replication, file_replication],
        instance=instance,
        resources={"repository": Database(url=settings.repository_url), "replica": Database(url=settings.replica_url)},
        run_config=dg.RunConfig(ops={"entity_replication": config, "file_replication": config}),
    )
    assert result.success
    return {
        name: {key: value.value for key, value in result.asset_materializations_for_node(name)[0].metadata.items()}
        for name in ("entity_replication", "file_replication")
    }


def test_incremental_then_full_refresh_report_rows_and_bytes(settings, builder):
    project = builder.project()
    shared = builder.handle(size=5000)
    builder.file_entity(project, builder.handle(size=7), shared, shared)
    instance = dg.DagsterInstance.ephemeral()

    first = _materialize(settings, instance)
    assert first["entity_replication"]["rows_upserted"] == 3
    assert first["entity_replication"]["total_rows"] == 3
    assert "total_bytes" not in first["entity_replication"]
    assert first["file_replication"]["rows_upserted"] == 2
    assert first["file_replication"]["total_bytes"] == 5007
    assert first["file_replication"]["full_refresh"] is True
    assert first["file_replication"]["analyzed"] is True

    again = _materialize(settings, instance)
    assert again["entity_replication"]["rows_upserted"] == again["file_replication"]["rows_upserted"] == 0
    assert again["file_replication"]["full_refresh"] is False
    assert again["file_replication"]["analyzed"] is False
    assert again["file_replication"]["total_rows"] == 2

    full = _materialize(settings, instance, full_refresh=True)
    assert full["file_replication"]["full_refresh"] is True
    assert full["file_replication"]["rows_upserted"] == 2
    assert full["entity_replication"]["high_water"] == builder.now.isoformat()


def test_assets_are_grouped_for_the_ui():
    assert entity_replication.group_names_by_key[entity_replication.key] == "replica"
    assert file_replication.group_names_by_key[file_replication.key] == "replica"
