"""The per-project files_out_of_place asset, materialized by Dagster into Parquet."""

import dagster as dg
import pandas as pd
import pytest
from helpers.repository_builder import Scenario, bootstrapped_builder, build_scenario

from costalloc_pipeline.config import Settings
from costalloc_pipeline.defs.assets.files_out_of_place import files_out_of_place
from costalloc_pipeline.defs.assets.replication import entity_replication, file_replication
from costalloc_pipeline.defs.partitions import (
    project_id_of,
    project_partition_key,
    projects,
    projects_with_partitions,
)
from costalloc_pipeline.defs.resources.databases import Database
from costalloc_pipeline.defs.resources.io_manager import ParquetIOManager
from costalloc_pipeline.errors import BadRequest


@pytest.fixture
def scenario(settings: Settings) -> Scenario:
    return build_scenario(bootstrapped_builder(settings))


def _resources(settings: Settings, storage) -> dict:
    return {
        "repository": Database(url=settings.repository_url),
        "replica": Database(url=settings.replica_url),
        "parquet_io_manager": ParquetIOManager(base_dir=str(storage)),
    }


def _run(settings: Settings, storage, project_id: int) -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    resources = _resources(settings, storage)
    assert dg.materialize([entity_replication, file_replication], instance=instance, resources=resources).success
    instance.add_dynamic_partitions(projects.name, [project_partition_key(project_id)])
    return dg.materialize(
        [files_out_of_place],
        instance=instance,
        resources=resources,
        partition_key=project_partition_key(project_id),
    )


def test_dataset_and_metadata_of_a_project(settings, scenario, tmp_path):
    result = _run(settings, tmp_path, scenario.alpha_project)

    assert result.success
    stored = pd.read_parquet(tmp_path / "files_out_of_place" / f"syn{scenario.alpha_project}.parquet")
    expected = scenario.ids(
        "versioned",
        "preview_1",
        "shared_by_versions",
        "preview_of_placed",
        "in_beta",
        "shared_with_partner",
        "with_shared_preview",
    )
    assert set(stored["file_handle_id"]) == expected
    pd.testing.assert_frame_equal(result.output_for_node("files_out_of_place"), stored, check_like=True)

    [materialization] = result.asset_materializations_for_node("files_out_of_place")
    metadata = materialization.metadata
    assert metadata["files"].value == 7
    # Four handles of 100 bytes, two previews of 10 bytes, one handle of 300 in the beta bucket.
    assert metadata["bytes"].value == 4 * 100 + 2 * 10 + 300
    assert metadata["previews"].value == 2
    assert metadata["target_bucket"].value == scenario.alpha_bucket
    assert metadata["project"].value == f"syn{scenario.alpha_project}"
    assert metadata["conflicts"].value == 2
    assert metadata["conflict_bytes"].value == 4000 + 10
    assert len(metadata["preview"].value.records) == 7
    conflicting = {record.data["file_handle_id"] for record in metadata["conflicting_handles"].value.records}
    assert conflicting == scenario.ids("shared_with_plain", "shared_preview")
    assert {record.data["other_target_bucket"] for record in metadata["conflicting_handles"].value.records} == {
        scenario.default_bucket
    }


def test_a_project_with_nothing_misplaced_stores_an_empty_dataset(settings, scenario, tmp_path):
    result = _run(settings, tmp_path, scenario.plain_project)

    assert result.success
    stored = pd.read_parquet(tmp_path / "files_out_of_place" / f"syn{scenario.plain_project}.parquet")
    assert stored.empty and "file_handle_id" in stored.columns
    [materialization] = result.asset_materializations_for_node("files_out_of_place")
    assert (materialization.metadata["files"].value, materialization.metadata["bytes"].value) == (0, 0)


def test_partition_keys_are_syn_ids_and_earlier_bare_numbers_still_read():
    assert project_partition_key(123) == "syn123"
    assert project_id_of("syn123") == project_id_of("SYN123") == project_id_of("123") == 123
    for bad in ("syn", "", "12a", "-1", "syn-1", "10" * 10):
        with pytest.raises(BadRequest, match="is not of the form syn123"):
            project_id_of(bad)


def test_only_todays_keys_count_as_partitions():
    assert projects_with_partitions(["syn1", "2", "syn3"]) == [1, 3]


def test_asset_is_partitioned_by_project_and_grouped_for_the_ui():
    assert files_out_of_place.partitions_def == projects
    assert files_out_of_place.group_names_by_key[files_out_of_place.key] == "relocation"
    assert set(files_out_of_place.asset_deps[files_out_of_place.key]) == {entity_replication.key, file_replication.key}
