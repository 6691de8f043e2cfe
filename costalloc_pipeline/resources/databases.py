"""The repository and replica databases as Dagster resources."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import Engine

from costalloc_pipeline.db import engine_for


class Database(dg.ConfigurableResource):
    """A SQLAlchemy URL; the engine is shared per process."""

    url: str

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)
