"""The run settings (config.RunSettings) as a Dagster resource, configurable in the UI's launchpad."""

from __future__ import annotations

from typing import Any

import dagster as dg

from costalloc_pipeline.config import RunSettings, Settings


class CostAllocSettings(dg.ConfigurableResource, RunSettings):
    """Stack, buckets and the mover's bounds (DESIGN.md sections 4 and 6): the fields of RunSettings.

    Checked like `Settings` whenever it is built, including from the launchpad's run config: a bad
    value fails the run's resource initialisation with a ConfigError.
    """

    @classmethod
    def checkable(cls, data: dict[str, Any]) -> dict[str, Any]:
        # A dg.EnvVar is resolved (and then checked) at run time, when the resource is built again.
        return {name: value for name, value in data.items() if not isinstance(value, dg.EnvVar)}

    @classmethod
    def from_settings(cls, settings: Settings) -> CostAllocSettings:
        return cls(**settings.run_values())

    def to_settings(self, repository_url: str, replica_url: str, s3_endpoint_url: str | None) -> Settings:
        return Settings(
            repository_url=repository_url,
            replica_url=replica_url,
            s3_endpoint_url=s3_endpoint_url,
            **self.run_values(),
        )
