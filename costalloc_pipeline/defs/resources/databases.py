"""The repository and replica databases as Dagster resources."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import Engine

from costalloc_pipeline import changes, removal, storage
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.mover import ledger
from costalloc_pipeline.placement.progress import Progress, project_progress
from costalloc_pipeline.placement.rule import load_placement


class Database(dg.ConfigurableResource):
    """A SQLAlchemy URL; the engine is shared per process."""

    url: str

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)


class RepositoryDatabase(Database):
    """The repository, with the questions the wiring asks of it: the assets, sensors, schedules and
    checks hold no SQL (it lives in the domain modules these methods call)."""

    def changes_since(self, high_water: int) -> list[changes.Change]:
        with self.engine.connect() as conn:
            return changes.changes_since(conn, high_water)

    def associated_projects(self) -> list[int]:
        with self.engine.connect() as conn:
            return changes.associated_projects(conn)

    def progress(self, project_ids: list[int]) -> list[Progress]:
        """Each project's way to zero misplaced bytes, against one placement read once."""
        with self.engine.connect() as conn:
            placement = load_placement(conn)
            return [project_progress(conn, project_id, placement) for project_id in project_ids]

    def run_progress(self, before: Progress, run_id: str) -> Progress:
        """`before` (the project's progress when the run began) advanced by what the run moved since."""
        with self.engine.connect() as conn:
            return before.after_moving(*ledger.moved_by_run(conn, before.project_id, run_id))

    def bucket_usage(self) -> list[storage.BucketUsage]:
        return storage.bucket_usage(self.engine)

    def finish_removal_when_placed(self, project_id: int) -> bool:
        return removal.finish_removal_when_placed(self.engine, project_id)
