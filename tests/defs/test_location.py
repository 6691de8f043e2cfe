"""The code location loads whole, and a real relocation run works on Dagster storage in PostgreSQL
and in MySQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
from helpers.backends import mariadb_only
from sqlalchemy.engine import make_url

from costalloc_pipeline.defs.location import build_definitions


def test_the_definitions_hold_the_whole_pipeline(settings):
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "entity_replication",
        "file_replication",
        "files_out_of_place",
        "relocation",
        "cost_allocation_storage",
        "repository_files",
    }
    checks = {check.name: check.asset_key.to_user_string() for check in graph.asset_check_keys}
    assert checks == {
        "no_misplaced_files": "relocation",
        "invariants_hold": "repository_files",
        "bucket_headroom": "cost_allocation_storage",
    }
    # The per-project check is partitioned like the relocation; the audit's asset is not materialized here.
    [progress_check] = [key for key in graph.asset_check_keys if key.name == "no_misplaced_files"]
    assert graph.get_check_spec(progress_check).partitions_def is not None
    assert not graph.get(dg.AssetKey("repository_files")).is_materializable
    assert defs.resolve_job_def("relocate_project").partitions_def is not None
    assert defs.resolve_sensor_def("cost_allocation_changes")
    for schedule in ("rescan_projects", "finish_moves_daily", "report_storage_hourly", "audit_repository_daily"):
        assert defs.resolve_schedule_def(schedule)


def test_materializing_the_storage_report_does_not_run_the_full_audit(settings):
    defs = build_definitions(settings)
    report = defs.resolve_job_def("report_storage").asset_layer.asset_graph
    audit = defs.resolve_job_def("audit_repository").asset_layer.asset_graph
    # The report's own check, the bucket headroom, is one ListBuckets: it comes along.
    assert {key.name for key in report.asset_check_keys} == {"bucket_headroom"}
    assert {key.name for key in audit.asset_check_keys} == {"invariants_hold"}


def test_a_relocation_run_on_postgresql_instance_storage(stack, empty_postgres_url):
    url = make_url(empty_postgres_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    overrides = {"storage": {"postgres": {"postgres_url": url}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        _relocate_first_project(stack, instance)


def _relocate_first_project(stack, instance: dg.DagsterInstance) -> None:
    """Assigns the stack's first project and runs the sensor's relocation on `instance`."""
    on_instance = stack.on_instance(instance)
    on_instance.assign(stack.report.project_ids[0], "genomics")
    [run] = on_instance.runner.tick()
    assert run.success
    assert instance.get_run_by_id(run.run_id).is_success
    [check] = run.get_asset_check_evaluations()
    assert check.passed


def test_the_schedules_run_on_the_crons_of_the_settings_and_a_bad_one_is_a_config_error() -> None:
    import pytest

    from costalloc_pipeline.config import Settings
    from costalloc_pipeline.defs.location import build_definitions
    from costalloc_pipeline.errors import ConfigError

    crons = {s.name: s.cron_schedule for s in build_definitions(Settings(rescan_cron="15 2 * * *")).schedules}
    assert crons == {
        "rescan_projects": "15 2 * * *",
        "finish_moves_daily": "30 3 * * *",
        "report_storage_hourly": "0 * * * *",
        "audit_repository_daily": "0 5 * * *",
    }
    with pytest.raises(ConfigError, match="COSTALLOC_AUDIT_CRON"):
        build_definitions(Settings(audit_cron="61 * * * *"))


def test_importing_the_code_location_starts_no_server(tmp_path) -> None:
    """On the embedded default, the data folder's S3 server starts when a run first needs it."""
    import os
    import subprocess
    import sys

    from costalloc_pipeline.embedded import running_embedded_s3

    data_dir = tmp_path / "data"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("COSTALLOC_")}
    environment["COSTALLOC_DATA_DIR"] = str(data_dir)
    loaded = subprocess.run(
        [sys.executable, "-c", "import costalloc_pipeline.definitions as d; print(len(d.defs.jobs))"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert running_embedded_s3(data_dir) is None and not (data_dir / "s3-server.json").exists()


REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@mariadb_only
def test_a_relocation_run_on_mysql_instance_storage_from_the_production_file(
    stack, empty_mariadb_url, tmp_path, monkeypatch
):
    # The file the README tells a platform team to copy, with its variables set: Dagster's own
    # storage on MariaDB through dagster-mysql.
    shutil.copy(REPOSITORY_ROOT / "dagster.mysql.yaml", tmp_path / "dagster.yaml")
    url = make_url(empty_mariadb_url)
    for name, value in {
        "DAGSTER_MYSQL_HOST": url.host,
        "DAGSTER_MYSQL_PORT": str(url.port),
        "DAGSTER_MYSQL_USER": url.username,
        "DAGSTER_MYSQL_PASSWORD": url.password or "",
        "DAGSTER_MYSQL_DB": url.database,
    }.items():
        monkeypatch.setenv(name, str(value))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "MySQLRunStorage"
        _relocate_first_project(stack, instance)
