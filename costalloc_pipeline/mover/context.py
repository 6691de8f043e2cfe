"""What one run of a project's relocation works with, built in one place for every caller (the
relocation asset, `costalloc resume`, the tests)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from sqlalchemy import Engine

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.mover.archive_method import BucketStates
from costalloc_pipeline.mover.copier import CopyOptions
from costalloc_pipeline.placement.rule import Placement, Target, load_placement

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import StorageClassType

Clock = Callable[[], dt.datetime]
# Verified copies a bundle repoints (and then archives) together while it goes on copying.
REPOINT_BATCH = 64


@dataclass(frozen=True)
class MoveContext:
    repository: Engine
    # Other stacks' repository databases that may reference the same objects (cross-stack safety).
    other_repositories: tuple[Engine, ...]
    s3: S3Client
    run_id: str
    project_id: int
    target: Target
    placement: Placement
    copy: CopyOptions
    archive_storage_class: StorageClassType
    # COSTALLOC_ARCHIVE_MODE and the retention the buckets' rules must keep archives for (archive_method.py).
    archive_mode: str
    archive_retention_days: int
    concurrency: int
    # Seconds between a repoint and the archive of the old object (late readers and writers).
    archive_grace_seconds: int
    lease_seconds: int
    # Naive UTC now: leases and grace periods are measured with it (tests drive their own).
    clock: Clock = utcnow
    # Verified copies repointed (and then archived) together while the bundle goes on copying: a
    # few transactions a batch, so a batch of two waves of requests or more (pipeline.py).
    repoint_batch: int = REPOINT_BATCH
    # What the run read of each bucket's versioning and rules (archive_method.py).
    bucket_states: BucketStates = field(default_factory=BucketStates)

    @property
    def managed_buckets(self) -> frozenset[str]:
        return self.placement.managed_buckets

    def due_before(self) -> dt.datetime:
        """Repoints at or before this moment are past their grace period."""
        return self.clock() - dt.timedelta(seconds=self.archive_grace_seconds)


def move_context(
    settings: Settings,
    repository: Engine,
    s3: S3Client,
    project_id: int,
    run_id: str,
    clock: Clock = utcnow,
    **overrides: object,
) -> MoveContext:
    """The context of a run of the project, from the live repository and the settings."""
    placement = load_placement(repository)
    values: dict[str, object] = {
        "repository": repository,
        "other_repositories": tuple(engine_for(url) for url in settings.other_repository_urls),
        "s3": s3,
        "run_id": run_id,
        "project_id": project_id,
        "target": placement.target(project_id),
        "placement": placement,
        "copy": CopyOptions(settings.multipart_threshold, settings.multipart_part_size),
        # Safe: Settings admits only the names in ARCHIVE_STORAGE_CLASSES, all of them S3 storage classes.
        "archive_storage_class": cast("StorageClassType", settings.archive_storage_class),
        "archive_mode": settings.archive_mode,
        "archive_retention_days": settings.archive_retention_days,
        "concurrency": settings.copy_concurrency,
        "archive_grace_seconds": settings.archive_grace_seconds,
        "lease_seconds": settings.lease_seconds,
        "clock": clock,
    }
    values.update(overrides)
    return MoveContext(**values)  # type: ignore[arg-type]
