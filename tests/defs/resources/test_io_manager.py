"""The Parquet IO manager: local folder by default, S3 (moto's server over HTTP) when configured."""

import dagster as dg
import pandas as pd
import pytest

from costalloc_pipeline.defs.partitions import projects
from costalloc_pipeline.defs.resources.io_manager import ParquetIOManager
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.errors import BadRequest, NotFound
from costalloc_pipeline.s3 import make_s3_client

BUCKET = "test-pipeline-storage"
# Dynamic partitions need an instance; the IO manager only sees the keys.
PARTITIONS = dg.StaticPartitionsDefinition(["123", "42", "../escape", ".."])


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file_handle_id": pd.array(range(1, rows + 1), dtype="Int64"),
            "key": pd.array([f'1/{i}/file {i}, "quoted".csv' for i in range(rows)], dtype="str"),
            "content_size": pd.array([None if i == 1 else i * 10 for i in range(rows)], dtype="Int64"),
            "is_preview": pd.array([i % 2 == 0 for i in range(rows)], dtype="bool"),
        }
    )


def _round_trip(manager: ParquetIOManager, frame: pd.DataFrame, partition: str | None = None) -> pd.DataFrame:
    key = dg.AssetKey(["relocation", "files_out_of_place"])
    partitions = PARTITIONS if partition is not None else None
    output = dg.build_output_context(asset_key=key, partition_key=partition, asset_partitions_def=partitions)
    manager.handle_output(output, frame)
    upstream = dg.build_output_context(asset_key=key, partition_key=partition, asset_partitions_def=partitions)
    return manager.load_input(
        dg.build_input_context(
            asset_key=key, partition_key=partition, asset_partitions_def=partitions, upstream_output=upstream
        )
    )


@pytest.fixture
def s3_manager(s3_endpoint: str) -> ParquetIOManager:
    make_s3_client(s3_endpoint, "us-east-1").create_bucket(Bucket=BUCKET)
    return ParquetIOManager(s3_bucket=BUCKET, s3_prefix="pipeline", s3=RepositoryS3(endpoint_url=s3_endpoint))


@pytest.mark.parametrize("rows", [0, 5])
def test_local_round_trip_keeps_values_and_dtypes(tmp_path, rows):
    manager = ParquetIOManager(base_dir=str(tmp_path / "storage"))
    frame = _frame(rows)

    loaded = _round_trip(manager, frame, partition="123")

    pd.testing.assert_frame_equal(loaded, frame)
    assert (tmp_path / "storage" / "relocation" / "files_out_of_place" / "123.parquet").is_file()
    assert [path.name for path in (tmp_path / "storage" / "relocation" / "files_out_of_place").iterdir()] == [
        "123.parquet"
    ]


def test_unpartitioned_asset_is_one_file(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path))

    pd.testing.assert_frame_equal(_round_trip(manager, _frame(3)), _frame(3))
    assert (tmp_path / "relocation" / "files_out_of_place.parquet").is_file()


@pytest.mark.parametrize("rows", [0, 5])
def test_s3_round_trip(s3_manager, s3_endpoint, rows):
    frame = _frame(rows)

    loaded = _round_trip(s3_manager, frame, partition="42")

    pd.testing.assert_frame_equal(loaded, frame)
    listing = make_s3_client(s3_endpoint, "us-east-1").list_objects_v2(Bucket=BUCKET)
    assert [item["Key"] for item in listing["Contents"]] == ["pipeline/relocation/files_out_of_place/42.parquet"]


def test_missing_dataset_is_a_clear_error(tmp_path, s3_manager):
    key = dg.AssetKey(["never_materialized"])
    for manager in (ParquetIOManager(base_dir=str(tmp_path)), s3_manager):
        with pytest.raises(NotFound, match="materialize it first"):
            manager.load_input(
                dg.build_input_context(asset_key=key, upstream_output=dg.build_output_context(asset_key=key))
            )


def test_partition_keys_cannot_leave_the_asset_folder(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path))
    for partition in ("../escape", ".."):
        with pytest.raises(BadRequest, match="cannot name a Parquet file"):
            _round_trip(manager, _frame(1), partition=partition)
    assert not any(tmp_path.iterdir())


def test_only_dataframes_are_stored(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path))
    with pytest.raises(BadRequest, match="pandas DataFrames"):
        manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey(["x"])), [1, 2])


def test_s3_bucket_without_s3_resource_is_a_clear_error(tmp_path):
    manager = ParquetIOManager(s3_bucket=BUCKET)
    with pytest.raises(BadRequest, match="no s3 resource"):
        _round_trip(manager, _frame(1))


def test_materialized_asset_feeds_its_downstream_asset(tmp_path):
    @dg.asset(partitions_def=projects, io_manager_key="parquet_io_manager")
    def upstream(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return _frame(int(context.partition_key))

    @dg.asset(partitions_def=projects, io_manager_key="parquet_io_manager")
    def downstream(upstream: pd.DataFrame) -> pd.DataFrame:
        return upstream.assign(doubled=upstream["content_size"] * 2)

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(projects.name, ["4"])
    result = dg.materialize(
        [upstream, downstream],
        partition_key="4",
        instance=instance,
        resources={"parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path))},
    )

    assert result.success
    stored = result.output_for_node("downstream")
    assert list(stored["doubled"]) == [0, pd.NA, 40, 60]
    [materialization] = result.asset_materializations_for_node("upstream")
    assert materialization.metadata["stored_rows"].value == 4
    assert materialization.metadata["storage"].value.endswith("upstream/4.parquet")
