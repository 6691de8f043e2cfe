"""The costalloc settings as a Dagster resource, configurable in the UI's launchpad."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import model_validator

from costalloc_pipeline.config import Settings, validate_values
from costalloc_pipeline.storage_classes import DEFAULT_ARCHIVE_STORAGE_CLASS


class CostAllocSettings(dg.ConfigurableResource):
    """Stack, buckets and the mover's bounds (DESIGN.md sections 4 and 6).

    Checked like `Settings` (config.validate_values) whenever it is built, including from the
    launchpad's run config: a bad value fails the run's resource initialisation with a ConfigError.
    """

    data_dir: str = "data"
    stack: str = "dev"
    default_bucket: str = ""
    archive_storage_class: str = DEFAULT_ARCHIVE_STORAGE_CLASS
    archive_retention_days: int = 365
    archive_grace_seconds: int = 86400
    bundle_max_files: int = 500
    bundle_max_bytes: int = 50 * 1024**3
    max_bundles: int = 200
    copy_concurrency: int = 32
    multipart_threshold: int = 5 * 1024**3
    multipart_part_size: int = 512 * 1024**2
    # A pydantic field, not a class attribute: pydantic copies the default for each instance. Not
    # Field(default_factory=list): Dagster would then drop the default from the launchpad's schema.
    other_repository_urls: list[str] = []  # noqa: RUF012
    audit_sample: int = 0
    lease_seconds: int = 600

    @model_validator(mode="before")
    @classmethod
    def _validate(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # A dg.EnvVar is resolved (and then checked) at run time, when the resource is built again.
        given = {name: value for name, value in data.items() if not hasattr(value, "env_var_name")}
        return {**data, **validate_values(given)}

    @classmethod
    def from_settings(cls, settings: Settings) -> CostAllocSettings:
        values = {name: getattr(settings, name) for name in cls.model_fields}
        values["data_dir"] = str(settings.data_dir)
        values["other_repository_urls"] = list(settings.other_repository_urls)
        return cls(**values)

    def to_settings(self, repository_url: str, replica_url: str, s3_endpoint_url: str | None) -> Settings:
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values["data_dir"] = Path(self.data_dir)
        values["other_repository_urls"] = tuple(self.other_repository_urls)
        return Settings(
            repository_url=repository_url, replica_url=replica_url, s3_endpoint_url=s3_endpoint_url, **values
        )
