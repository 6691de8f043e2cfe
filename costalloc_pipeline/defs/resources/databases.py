"""The repository and replica databases as Dagster resources."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from sqlalchemy import Engine

from costalloc_pipeline import changes, headroom, removal, storage
from costalloc_pipeline.billing import metrics
from costalloc_pipeline.billing.aws import cloudwatch_client
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.embedded import ensure_embedded_s3
from costalloc_pipeline.mover import ledger
from costalloc_pipeline.placement.progress import Progress, projects_progress


class Database(dg.ConfigurableResource):
    """A SQLAlchemy URL; the engine is shared per process."""

    url: str

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)


class RepositoryDatabase(Database):
    """The repository, with the questions the wiring asks of it: the assets, sensors, schedules and
    checks hold no SQL (it lives in the domain modules these methods call).

    The storage report's figures also go to CloudWatch when a namespace is set
    (COSTALLOC_CLOUDWATCH_NAMESPACE), at the repository's S3 endpoint (moto's server answers both).
    """

    cloudwatch_namespace: str = ""
    cloudwatch_endpoint_url: str | None = None
    cloudwatch_region: str = "us-east-1"
    # The embedded default's data folder, whose S3 server stands in for CloudWatch; unset otherwise.
    embedded_data_dir: str | None = None

    def changes_since(self, high_water: int) -> list[changes.Change]:
        with self.engine.connect() as conn:
            return changes.changes_since(conn, high_water)

    def associated_projects(self) -> list[int]:
        with self.engine.connect() as conn:
            return changes.associated_projects(conn)

    def progress(self, project_ids: list[int]) -> list[Progress]:
        """Each project's way to zero misplaced bytes, against one placement read once."""
        with self.engine.connect() as conn:
            return projects_progress(conn, project_ids)

    def associated_progress(self) -> list[Progress]:
        """Every associated project's progress."""
        with self.engine.connect() as conn:
            return projects_progress(conn)

    def run_progress(self, before: Progress, run_id: str) -> Progress:
        """`before` (the project's progress when the run began) advanced by what the run moved since."""
        with self.engine.connect() as conn:
            return before.after_moving(*ledger.moved_by_run(conn, before.project_id, run_id))

    def cost_allocation_buckets(self) -> list[str]:
        with self.engine.connect() as conn:
            return headroom.allocation_buckets(conn)

    def bucket_usage(self) -> list[storage.BucketUsage]:
        return storage.bucket_usage(self.engine)

    def publish_storage_metrics(self, usage: list[storage.BucketUsage], progress: list[Progress]) -> int:
        """Puts the report's live figures into CloudWatch; how many data (0: publishing is off)."""
        if not self.cloudwatch_namespace:
            return 0
        endpoint = self.cloudwatch_endpoint_url
        if endpoint is None and self.embedded_data_dir is not None:
            endpoint = ensure_embedded_s3(Path(self.embedded_data_dir))
        client = cloudwatch_client(endpoint, self.cloudwatch_region)
        return metrics.publish_storage(client, self.cloudwatch_namespace, usage, progress)

    def finish_removal_when_placed(self, project_id: int) -> bool:
        return removal.finish_removal_when_placed(self.engine, project_id)
