"""Settings read from the environment, with the embedded defaults of DESIGN.md section 6."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DATA_DIR = "data"
DEFAULT_STACK = "dev"
DEFAULT_MULTIPART_THRESHOLD = 5 * 1024**3
DEFAULT_PART_SIZE = 512 * 1024**2
REAL_S3 = "aws"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"costalloc: {name} must be an integer, got {raw!r}") from None


def _endpoint(raw: str | None) -> str | None:
    return None if not raw or raw == REAL_S3 else raw


def _list(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "")
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Everything that differs between the embedded default and production.

    Each field maps to one COSTALLOC_* variable (see README, "Configuration").
    """

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    repository_url: str = ""
    replica_url: str = ""
    s3_endpoint_url: str | None = None
    # COSTALLOC_S3_ENDPOINT_URL=aws: AWS's own endpoints and credentials chain, no embedded server.
    real_s3: bool = False
    s3_region: str = "us-east-1"
    stack: str = DEFAULT_STACK
    default_bucket: str = ""
    archive_storage_class: str = "GLACIER"
    archive_retention_days: int = 365
    bundle_max_files: int = 500
    bundle_max_bytes: int = 50 * 1024**3
    max_bundles: int = 200
    copy_concurrency: int = 32
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    multipart_part_size: int = DEFAULT_PART_SIZE
    other_repository_urls: tuple[str, ...] = field(default_factory=tuple)
    # Where the files_out_of_place datasets go: S3 when a bucket is named, else the data folder.
    dataset_bucket: str = ""
    # Handles the scheduled invariant audit checks: 0 for every one, else a random sample of that many.
    audit_sample: int = 0

    def __post_init__(self) -> None:
        if not self.repository_url:
            object.__setattr__(self, "repository_url", f"sqlite:///{self.data_dir / 'repository.db'}")
        if not self.replica_url:
            object.__setattr__(self, "replica_url", f"sqlite:///{self.data_dir / 'replica.db'}")
        if not self.default_bucket:
            object.__setattr__(self, "default_bucket", f"{self.stack}-costalloc-default")

    def with_changes(self, **changes: object) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ.get
        return cls(
            data_dir=Path(env("COSTALLOC_DATA_DIR", DEFAULT_DATA_DIR)),
            repository_url=env("COSTALLOC_REPOSITORY_URL", ""),
            replica_url=env("COSTALLOC_REPLICA_URL", ""),
            s3_endpoint_url=_endpoint(env("COSTALLOC_S3_ENDPOINT_URL")),
            real_s3=env("COSTALLOC_S3_ENDPOINT_URL") == REAL_S3,
            s3_region=env("COSTALLOC_S3_REGION", "us-east-1"),
            stack=env("COSTALLOC_STACK", DEFAULT_STACK),
            default_bucket=env("COSTALLOC_DEFAULT_BUCKET", ""),
            archive_storage_class=env("COSTALLOC_ARCHIVE_STORAGE_CLASS", "GLACIER"),
            archive_retention_days=_int("COSTALLOC_ARCHIVE_RETENTION_DAYS", 365),
            bundle_max_files=_int("COSTALLOC_BUNDLE_MAX_FILES", 500),
            bundle_max_bytes=_int("COSTALLOC_BUNDLE_MAX_BYTES", 50 * 1024**3),
            max_bundles=_int("COSTALLOC_MAX_BUNDLES", 200),
            copy_concurrency=_int("COSTALLOC_COPY_CONCURRENCY", 32),
            multipart_threshold=_int("COSTALLOC_MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD),
            multipart_part_size=_int("COSTALLOC_MULTIPART_PART_SIZE", DEFAULT_PART_SIZE),
            other_repository_urls=_list("COSTALLOC_OTHER_REPOSITORY_URLS"),
            dataset_bucket=env("COSTALLOC_DATASET_BUCKET", ""),
            audit_sample=_int("COSTALLOC_AUDIT_SAMPLE", 0),
        )
