"""Versioned migrations (Alembic) for the two databases.

Each database has its own migration history and version table, so that both may live in one
database when the repository and replica URLs are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from costalloc_pipeline.db import make_engine

Database = Literal["repository", "replica"]

_MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLES: dict[str, str] = {
    "repository": "alembic_version_repository",
    "replica": "alembic_version_replica",
}


def alembic_config(database: Database, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS / database))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["database"] = database
    return config


def upgrade(database: Database, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database, url), revision)


def upgrade_all(repository_url: str, replica_url: str) -> None:
    upgrade("repository", repository_url)
    upgrade("replica", replica_url)


def run_env(context, target_metadata: MetaData) -> None:
    """Body of both env.py files: online migrations only (we always have a database)."""
    config = context.config
    database = config.attributes.get("database") or Path(config.get_main_option("script_location")).name
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=VERSION_TABLES[database],
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
