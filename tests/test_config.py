"""Settings are validated in one place: from the environment, from code and as the Dagster resource.

A bad value is a ConfigError naming its COSTALLOC_* variable; the command prints it as one line and
exits 2 before it creates anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from costalloc_pipeline import config
from costalloc_pipeline.config import INTEGER_SETTINGS, Settings
from costalloc_pipeline.defs.resources.settings import CostAllocSettings
from costalloc_pipeline.errors import ConfigError, CostAllocError
from costalloc_pipeline.storage_classes import ARCHIVE_STORAGE_CLASSES

COSTALLOC = Path(sys.executable).with_name("costalloc")

# variable, a value below its bound
BELOW_BOUND = [
    ("COSTALLOC_ARCHIVE_RETENTION_DAYS", "0"),
    ("COSTALLOC_ARCHIVE_GRACE_SECONDS", "-1"),
    ("COSTALLOC_BUNDLE_MAX_FILES", "0"),
    ("COSTALLOC_BUNDLE_MAX_BYTES", "0"),
    ("COSTALLOC_MAX_BUNDLES", "0"),
    ("COSTALLOC_COPY_CONCURRENCY", "0"),
    ("COSTALLOC_MULTIPART_THRESHOLD", "-1"),
    ("COSTALLOC_MULTIPART_PART_SIZE", "0"),
    ("COSTALLOC_LEASE_SECONDS", "0"),
    ("COSTALLOC_AUDIT_SAMPLE", "-5"),
    ("COSTALLOC_BUCKET_QUOTA", "0"),
]
INTEGER_VARIABLES = [variable for variable, _ in BELOW_BOUND]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("COSTALLOC_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_every_integer_setting_is_checked() -> None:
    assert sorted(variable for variable, _ in INTEGER_SETTINGS.values()) == sorted(INTEGER_VARIABLES)


def test_the_defaults_are_valid(clean_env) -> None:
    settings = Settings.from_env()
    assert settings == Settings()
    assert (settings.archive_grace_seconds, settings.lease_seconds) == (86400, 600)
    assert settings.archive_storage_class == "GLACIER"


def test_the_new_settings_are_read_from_the_environment(clean_env) -> None:
    clean_env.setenv("COSTALLOC_ARCHIVE_GRACE_SECONDS", "0")
    clean_env.setenv("COSTALLOC_LEASE_SECONDS", " 30 ")
    settings = Settings.from_env()
    assert (settings.archive_grace_seconds, settings.lease_seconds) == (0, 30)


def test_the_schedules_crons_are_read_from_the_environment_when_given(clean_env) -> None:
    clean_env.setenv("COSTALLOC_RESCAN_CRON", " 15 2 * * * ")
    clean_env.setenv("COSTALLOC_AUDIT_CRON", "")
    settings = Settings.from_env()
    assert (settings.rescan_cron, settings.audit_cron) == ("15 2 * * *", "0 5 * * *")


def test_the_lowest_allowed_values_are_accepted(clean_env) -> None:
    for variable, minimum in INTEGER_SETTINGS.values():
        clean_env.setenv(variable, str(minimum))
    settings = Settings.from_env()
    assert {name: getattr(settings, name) for name in INTEGER_SETTINGS} == {
        name: minimum for name, (_, minimum) in INTEGER_SETTINGS.items()
    }


def test_an_empty_variable_means_the_default(clean_env) -> None:
    clean_env.setenv("COSTALLOC_COPY_CONCURRENCY", "")
    clean_env.setenv("COSTALLOC_ARCHIVE_STORAGE_CLASS", "")
    settings = Settings.from_env()
    assert (settings.copy_concurrency, settings.archive_storage_class) == (32, "GLACIER")


@pytest.mark.parametrize(("variable", "value"), BELOW_BOUND)
def test_a_value_below_its_bound_is_refused(clean_env, variable: str, value: str) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        Settings.from_env()
    assert variable in error.value.reason and repr(value) in error.value.reason


@pytest.mark.parametrize("variable", INTEGER_VARIABLES)
@pytest.mark.parametrize("value", ["abc", "1.5", "5GiB", "0x10"])
def test_a_non_numeric_value_is_refused(clean_env, variable: str, value: str) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        Settings.from_env()
    assert variable in error.value.reason and "integer" in error.value.reason


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="COSTALLOC_MULTIPART_PART_SIZE"):
        Settings(multipart_part_size=0)
    with pytest.raises(ConfigError, match="COSTALLOC_COPY_CONCURRENCY"):
        Settings().with_changes(copy_concurrency=0)
    with pytest.raises(ConfigError, match="COSTALLOC_LEASE_SECONDS"):
        Settings(lease_seconds=True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="COSTALLOC_ARCHIVE_STORAGE_CLASS"):
        Settings(archive_storage_class="STANDARD_IA")
    assert Settings(archive_storage_class="deep_archive").archive_storage_class == "DEEP_ARCHIVE"


@pytest.mark.parametrize(
    ("value", "stored"), [("glacier", "GLACIER"), ("Deep_Archive", "DEEP_ARCHIVE"), (" glacier_ir ", "GLACIER_IR")]
)
def test_the_archive_class_is_accepted_in_any_case_and_stored_upper_case(clean_env, value: str, stored: str) -> None:
    clean_env.setenv("COSTALLOC_ARCHIVE_STORAGE_CLASS", value)
    assert Settings.from_env().archive_storage_class == stored


@pytest.mark.parametrize("value", ["STANDARD_IA", "standard", "INTELLIGENT_TIERING", "glacierr", "none"])
def test_a_class_that_is_not_an_archive_is_refused_naming_the_allowed_ones(clean_env, value: str) -> None:
    clean_env.setenv("COSTALLOC_ARCHIVE_STORAGE_CLASS", value)
    with pytest.raises(ConfigError) as error:
        Settings.from_env()
    reason = error.value.reason
    assert reason.startswith("COSTALLOC_ARCHIVE_STORAGE_CLASS") and repr(value) in reason
    assert all(name in reason for name in ("GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"))


def test_one_set_of_archive_classes() -> None:
    assert frozenset({"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"}) == ARCHIVE_STORAGE_CLASSES
    assert config.ARCHIVE_STORAGE_CLASSES is ARCHIVE_STORAGE_CLASSES


def test_config_error_is_a_caller_error() -> None:
    assert issubclass(ConfigError, CostAllocError) and ConfigError.status == 400


def test_the_resource_carries_the_new_settings_both_ways() -> None:
    settings = Settings(archive_grace_seconds=5, lease_seconds=7, archive_storage_class="glacier_ir")
    resource = CostAllocSettings.from_settings(settings)
    assert (resource.archive_grace_seconds, resource.lease_seconds) == (5, 7)
    assert resource.archive_storage_class == "GLACIER_IR"
    back = resource.to_settings(settings.repository_url, settings.replica_url, settings.s3_endpoint_url)
    assert back == settings


def test_the_resource_is_checked_and_normalised() -> None:
    assert CostAllocSettings(archive_storage_class="deep_archive").archive_storage_class == "DEEP_ARCHIVE"
    assert (CostAllocSettings().archive_grace_seconds, CostAllocSettings().lease_seconds) == (86400, 600)
    with pytest.raises(ConfigError, match="COSTALLOC_MULTIPART_PART_SIZE"):
        CostAllocSettings(multipart_part_size=0)
    with pytest.raises(ConfigError, match="COSTALLOC_ARCHIVE_STORAGE_CLASS"):
        CostAllocSettings(archive_storage_class="STANDARD_IA")
    with pytest.raises(ConfigError, match="COSTALLOC_LEASE_SECONDS"):
        CostAllocSettings(lease_seconds=0)


def test_a_launchpad_override_is_checked_when_the_run_starts() -> None:
    seen: list[str] = []

    @dg.asset
    def probe(settings: CostAllocSettings) -> None:
        seen.append(settings.archive_storage_class)

    defs = dg.Definitions(
        assets=[probe],
        resources={"settings": CostAllocSettings()},
        jobs=[dg.define_asset_job("probe_job", selection=[probe])],
    )
    job = defs.resolve_job_def("probe_job")
    good = {"resources": {"settings": {"config": {"archive_storage_class": "deep_archive"}}}}
    assert job.execute_in_process(run_config=good).success
    assert seen == ["DEEP_ARCHIVE"]

    bad = {"resources": {"settings": {"config": {"multipart_part_size": 0}}}}
    result = job.execute_in_process(run_config=bad, raise_on_error=False)
    assert not result.success
    assert "COSTALLOC_MULTIPART_PART_SIZE" in str(result.failure_data_for_node("probe") or result.all_events)
    assert seen == ["DEEP_ARCHIVE"]


@pytest.mark.parametrize("command", [("verify",), ("list",), ("init",)])
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COSTALLOC_MULTIPART_PART_SIZE", "0"),
        ("COSTALLOC_COPY_CONCURRENCY", "abc"),
        ("COSTALLOC_ARCHIVE_STORAGE_CLASS", "STANDARD_IA"),
        ("COSTALLOC_LEASE_SECONDS", "0"),
        ("COSTALLOC_ARCHIVE_MODE", "delete"),
        ("COSTALLOC_DEFAULT_BUCKET_VERSIONING", "on"),
    ],
)
def test_the_command_says_it_in_one_line_and_exits_2(
    tmp_path: Path, command: tuple[str, ...], variable: str, value: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {name: raw for name, raw in os.environ.items() if not name.startswith("COSTALLOC_")}
    env.update({"COSTALLOC_DATA_DIR": str(data_dir), variable: value})
    completed = subprocess.run(
        [str(COSTALLOC), *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1 and completed.stderr.endswith("\n")
    assert completed.stderr.startswith(f"costalloc: {variable} ")
    assert completed.stdout == ""
    assert list(data_dir.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]


def test_the_environment_of_settings_gives_the_same_settings_back(monkeypatch, tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        repository_url="postgresql+psycopg://costalloc@db.internal/repository",
        replica_url=f"sqlite:///{tmp_path / 'replica.db'}",
        s3_endpoint_url="http://127.0.0.1:9000",
        stack="qa",
        archive_grace_seconds=0,
        bundle_max_files=7,
        lease_seconds=42,
        archive_storage_class="DEEP_ARCHIVE",
        archive_mode="copy",
        default_bucket_versioning="enable",
        executor="in_process",
    )
    for name in [name for name in os.environ if name.startswith("COSTALLOC_")]:
        monkeypatch.delenv(name)
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env() == settings


@pytest.mark.parametrize(
    ("variable", "value", "field", "stored"),
    [
        ("COSTALLOC_ARCHIVE_MODE", " Copy ", "archive_mode", "copy"),
        ("COSTALLOC_DEFAULT_BUCKET_VERSIONING", "ENABLE", "default_bucket_versioning", "enable"),
    ],
)
def test_the_archive_choices_are_read_in_any_case(
    clean_env, variable: str, value: str, field: str, stored: str
) -> None:
    clean_env.setenv(variable, value)
    assert getattr(Settings.from_env(), field) == stored


def test_the_archive_choices_default_to_deleting_where_a_bucket_allows_and_keeping_the_default_bucket(
    clean_env,
) -> None:
    clean_env.setenv("COSTALLOC_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    settings = Settings.from_env()
    assert (settings.archive_mode, settings.default_bucket_versioning) == ("auto", "keep")
    clean_env.setenv("COSTALLOC_S3_ENDPOINT_URL", "aws")
    assert Settings.from_env().archive_mode == "auto"


def test_the_embedded_s3_archives_by_copies(clean_env) -> None:
    # Its server replays its recording after a restart: the version ids of S3 would not survive it.
    assert Settings.from_env().archive_mode == "copy"
    clean_env.setenv("COSTALLOC_ARCHIVE_MODE", "auto")
    assert Settings.from_env().archive_mode == "auto"
