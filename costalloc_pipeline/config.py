"""Settings read from the environment, with the embedded defaults of DESIGN.md section 6.

Every setting is checked in one place, `validate_values`, whether it comes from the environment
(`Settings.from_env`), from code (`Settings(...)`) or from Dagster's launchpad (the resource built
on `RunSettings`); a bad value is a `ConfigError` whose reason names the COSTALLOC_* variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from costalloc_pipeline.errors import ConfigError
from costalloc_pipeline.storage_classes import (
    ARCHIVE_STORAGE_CLASSES,
    DEFAULT_ARCHIVE_STORAGE_CLASS,
)

DEFAULT_DATA_DIR = "data"
DEFAULT_STACK = "dev"
DEFAULT_MULTIPART_THRESHOLD = 5 * 1024**3
DEFAULT_PART_SIZE = 512 * 1024**2
REAL_S3 = "aws"

ARCHIVE_STORAGE_CLASS_VARIABLE = "COSTALLOC_ARCHIVE_STORAGE_CLASS"

# How a run executes its steps (defs/executors.py): auto sizes the run by its project, the others force one.
EXECUTOR_VARIABLE = "COSTALLOC_EXECUTOR"
EXECUTORS = ("auto", "in_process", "multiprocess", "celery")
# How the mover archives an old object (mover/archive_method.py): auto deletes it where the bucket
# keeps noncurrent versions for the retention period, and copies it into the archive class elsewhere;
# copy always copies (and costalloc turns versioning on nowhere).
ARCHIVE_MODES = ("auto", "copy")
# Whether `costalloc init` turns versioning on in the default bucket (enable) or leaves it as it is
# (keep): every delete and overwrite of the repository's own then leaves a noncurrent version too.
DEFAULT_BUCKET_VERSIONING = ("keep", "enable")

# Each setting that names one of a few choices: its variable and the choices (any case is accepted).
CHOICE_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "executor": (EXECUTOR_VARIABLE, EXECUTORS),
    "archive_mode": ("COSTALLOC_ARCHIVE_MODE", ARCHIVE_MODES),
    "default_bucket_versioning": ("COSTALLOC_DEFAULT_BUCKET_VERSIONING", DEFAULT_BUCKET_VERSIONING),
}

# Each schedule's cron expression: its variable. Dagster's cron parser checks them when the
# schedules are built (defs/schedules.py), and a bad one is a ConfigError naming its variable.
CRON_SETTINGS: dict[str, str] = {
    "rescan_cron": "COSTALLOC_RESCAN_CRON",
    "finish_cron": "COSTALLOC_FINISH_CRON",
    "report_cron": "COSTALLOC_REPORT_CRON",
    "audit_cron": "COSTALLOC_AUDIT_CRON",
}

# Each integer setting: its variable and the smallest value allowed.
INTEGER_SETTINGS: dict[str, tuple[str, int]] = {
    "archive_retention_days": ("COSTALLOC_ARCHIVE_RETENTION_DAYS", 1),
    "archive_grace_seconds": ("COSTALLOC_ARCHIVE_GRACE_SECONDS", 0),
    "bundle_max_files": ("COSTALLOC_BUNDLE_MAX_FILES", 1),
    "bundle_max_bytes": ("COSTALLOC_BUNDLE_MAX_BYTES", 1),
    "max_bundles": ("COSTALLOC_MAX_BUNDLES", 1),
    "copy_concurrency": ("COSTALLOC_COPY_CONCURRENCY", 1),
    "multipart_threshold": ("COSTALLOC_MULTIPART_THRESHOLD", 0),
    # AWS wants parts of at least 5 MiB (but the last); tests use tiny parts against moto.
    "multipart_part_size": ("COSTALLOC_MULTIPART_PART_SIZE", 1),
    "lease_seconds": ("COSTALLOC_LEASE_SECONDS", 1),
    "audit_sample": ("COSTALLOC_AUDIT_SAMPLE", 0),
    "bucket_quota": ("COSTALLOC_BUCKET_QUOTA", 1),
}

__all__ = [
    "ARCHIVE_MODES",
    "ARCHIVE_STORAGE_CLASSES",
    "CHOICE_SETTINGS",
    "CRON_SETTINGS",
    "EXECUTORS",
    "INTEGER_SETTINGS",
    "ConfigError",
    "RunSettings",
    "Settings",
    "validate_values",
]


def _integer(variable: str, minimum: int, value: object) -> int:
    number: int | None = None
    if type(value) is int:
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None or number < minimum:
        raise ConfigError(f"{variable} must be an integer >= {minimum}, got {value!r}")
    return number


def _archive_storage_class(value: object) -> str:
    name = value.strip().upper() if isinstance(value, str) else None
    if name not in ARCHIVE_STORAGE_CLASSES:
        allowed = ", ".join(sorted(ARCHIVE_STORAGE_CLASSES))
        raise ConfigError(f"{ARCHIVE_STORAGE_CLASS_VARIABLE} must be one of {allowed} (any case), got {value!r}")
    return name


def _choice(variable: str, choices: tuple[str, ...], value: object) -> str:
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in choices:
        raise ConfigError(f"{variable} must be one of {', '.join(choices)}, got {value!r}")
    return name


def validate_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The checked, normalised value of each validated setting in `values` (by field name).

    Integers may be given as text (as the environment does); the archive storage class in any case,
    returned upper-case; the other choices in any case, returned lower-case. Raises ConfigError
    naming the variable of the first bad value.
    """
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name in INTEGER_SETTINGS:
            variable, minimum = INTEGER_SETTINGS[name]
            checked[name] = _integer(variable, minimum, value)
        elif name == "archive_storage_class":
            checked[name] = _archive_storage_class(value)
        elif name in CHOICE_SETTINGS:
            checked[name] = _choice(*CHOICE_SETTINGS[name], value)
    return checked


def _env(name: str) -> str | None:
    """The variable's text, or None when it is unset or empty (the default applies)."""
    raw = os.environ.get(name)
    return None if raw is None or raw == "" else raw


def _endpoint(raw: str | None) -> str | None:
    return None if not raw or raw == REAL_S3 else raw


def _list(name: str) -> list[str]:
    raw = os.environ.get(name, "")
    return [item.strip() for item in raw.split(",") if item.strip()]


class RunSettings(BaseModel):
    """The settings a run may change: the stack and its default bucket, the archive, the mover's
    bounds, the audit's sample. Declared here once: `Settings` adds the connections and the
    schedules, and the Dagster resource (defs/resources/settings.py) offers exactly these fields in
    the launchpad. Every value is checked by `validate_values` whenever one is built.
    """

    stack: str = DEFAULT_STACK
    default_bucket: str = ""
    archive_storage_class: str = DEFAULT_ARCHIVE_STORAGE_CLASS
    archive_retention_days: int = 365
    # How long after a repoint the old object stays live before it may be archived (late readers and writers).
    archive_grace_seconds: int = 86400
    # One of ARCHIVE_MODES.
    archive_mode: str = "auto"
    bundle_max_files: int = 500
    bundle_max_bytes: int = 50 * 1024**3
    max_bundles: int = 200
    copy_concurrency: int = 32
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    multipart_part_size: int = DEFAULT_PART_SIZE
    # A list, not a tuple, so that the launchpad can edit it; pydantic copies the default per instance.
    other_repository_urls: list[str] = []
    # Handles the scheduled invariant audit checks: 0 for every one, else a random sample of that many.
    audit_sample: int = 0
    # How long a relocation run's lease on a project lasts without renewal.
    lease_seconds: int = 600
    # The account's general purpose bucket quota when Service Quotas cannot say (headroom.py).
    bucket_quota: int = 10_000

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {**data, **validate_values(cls.checkable(data))}

    @classmethod
    def checkable(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The given values that can be checked now (a subclass may defer some to run time)."""
        return data

    def run_values(self) -> dict[str, Any]:
        """This object's value of every `RunSettings` field, by name."""
        return {name: getattr(self, name) for name in RunSettings.model_fields}


class Settings(RunSettings):
    """Everything that differs between the embedded default and production.

    Each field maps to one COSTALLOC_* variable (see README, "Configuration").
    """

    model_config = ConfigDict(frozen=True)

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    repository_url: str = ""
    replica_url: str = ""
    s3_endpoint_url: str | None = None
    # COSTALLOC_S3_ENDPOINT_URL=aws: AWS's own endpoints and credentials chain, no embedded server.
    real_s3: bool = False
    s3_region: str = "us-east-1"
    # Where the files_out_of_place datasets go: S3 when a bucket is named, else the data folder.
    dataset_bucket: str = ""
    # A JSON file of prices in place of the defaults (billing/prices.py); empty: us-east-1 list prices.
    price_table: str = ""
    # The CloudWatch namespace the storage report publishes its figures to; empty: not published.
    cloudwatch_namespace: str = ""
    # The schedules: rescan every associated project, finish what runs left, report storage, audit.
    rescan_cron: str = "0 3 * * *"
    finish_cron: str = "30 3 * * *"
    report_cron: str = "0 * * * *"
    audit_cron: str = "0 5 * * *"
    # How runs execute their steps: one of EXECUTORS (README, "Scale-out over Celery workers").
    executor: str = "auto"
    # One of DEFAULT_BUCKET_VERSIONING.
    default_bucket_versioning: str = "keep"

    @model_validator(mode="before")
    @classmethod
    def _filled(cls, data: Any) -> Any:
        """The embedded defaults that follow from other settings: databases in the data folder, the
        default bucket named after the stack, and archive copies on the embedded S3 (its server
        replays its recording after a restart, and S3's version ids, by which the archives of
        versioned buckets are found, would not survive the replay)."""
        if not isinstance(data, dict):
            return data
        data_dir = Path(data.get("data_dir") or DEFAULT_DATA_DIR)
        embedded_s3 = not data.get("s3_endpoint_url") and not data.get("real_s3")
        filled = {
            "repository_url": f"sqlite:///{data_dir / 'repository.db'}",
            "replica_url": f"sqlite:///{data_dir / 'replica.db'}",
            "default_bucket": f"{data.get('stack') or DEFAULT_STACK}-costalloc-default",
            "archive_mode": "copy" if embedded_s3 else "auto",
        }
        return {**data, **{name: value for name, value in filled.items() if not data.get(name)}}

    def with_changes(self, **changes: Any) -> Settings:
        # Any: the validators check the values (integers may be text) and pydantic the names.
        return Settings(**{**dict(self), **changes})

    def environment(self) -> dict[str, str]:
        """The COSTALLOC_* variables from which from_env() gives back this stack's connections and
        the mover's bounds: what a process started for these settings (a daemon, a worker, a
        command) needs to see them."""
        variables = {
            "COSTALLOC_DATA_DIR": str(self.data_dir),
            "COSTALLOC_REPOSITORY_URL": self.repository_url,
            "COSTALLOC_REPLICA_URL": self.replica_url,
            "COSTALLOC_STACK": self.stack,
            **{variable: str(getattr(self, name)) for name, (variable, _) in INTEGER_SETTINGS.items()},
            **{variable: str(getattr(self, name)) for name, (variable, _) in CHOICE_SETTINGS.items()},
            ARCHIVE_STORAGE_CLASS_VARIABLE: self.archive_storage_class,
        }
        if self.s3_endpoint_url is not None:
            variables["COSTALLOC_S3_ENDPOINT_URL"] = str(self.s3_endpoint_url)
        return variables

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        # Only the variables that are set: the others keep the field's default. Text is checked by validate().
        given: dict[str, Any] = {
            name: raw for name, (variable, _) in INTEGER_SETTINGS.items() if (raw := _env(variable)) is not None
        }
        if (raw := _env(ARCHIVE_STORAGE_CLASS_VARIABLE)) is not None:
            given["archive_storage_class"] = raw
        given.update({name: raw for name, (variable, _) in CHOICE_SETTINGS.items() if (raw := _env(variable))})
        given.update({name: raw.strip() for name, variable in CRON_SETTINGS.items() if (raw := _env(variable))})
        return cls(
            data_dir=Path(env("COSTALLOC_DATA_DIR", DEFAULT_DATA_DIR)),
            repository_url=env("COSTALLOC_REPOSITORY_URL", ""),
            replica_url=env("COSTALLOC_REPLICA_URL", ""),
            s3_endpoint_url=_endpoint(env("COSTALLOC_S3_ENDPOINT_URL")),
            real_s3=env("COSTALLOC_S3_ENDPOINT_URL") == REAL_S3,
            s3_region=env("COSTALLOC_S3_REGION", "us-east-1"),
            stack=env("COSTALLOC_STACK", DEFAULT_STACK),
            default_bucket=env("COSTALLOC_DEFAULT_BUCKET", ""),
            other_repository_urls=_list("COSTALLOC_OTHER_REPOSITORY_URLS"),
            dataset_bucket=env("COSTALLOC_DATASET_BUCKET", ""),
            price_table=env("COSTALLOC_PRICE_TABLE", ""),
            cloudwatch_namespace=env("COSTALLOC_CLOUDWATCH_NAMESPACE", "").strip(),
            **given,
        )
