"""Settings for a running command: from the environment, with the embedded S3 started when needed."""

from __future__ import annotations

from costalloc_pipeline.config import Settings
from costalloc_pipeline.embedded import ensure_embedded_s3


def resolve_settings(settings: Settings | None = None) -> Settings:
    settings = settings or Settings.from_env()
    if settings.s3_endpoint_url is None and not settings.real_s3:
        settings = settings.with_changes(s3_endpoint_url=ensure_embedded_s3(settings.data_dir))
    return settings
