"""Versioned migrations (Alembic) for the two databases.

Each database has its own migration history and version table, so that both may live in one
database when the repository and replica URLs are the same.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal, Protocol

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData

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


class MigrationContext(Protocol):
    """What run_env uses of `alembic.context`, the module an env.py gets (not a class to name)."""

    config: Config

    def configure(
        self, *, connection: Connection, target_metadata: MetaData, version_table: str, render_as_batch: bool
    ) -> None: ...

    def begin_transaction(self) -> AbstractContextManager[object]: ...

    def run_migrations(self) -> None: ...


def _required_option(config: Config, name: str) -> str:
    # alembic_config() sets both options run_env reads; another configuration must too.
    value = config.get_main_option(name)
    if value is None:
        raise CommandError(f"No {name!r} key found in configuration.")
    return value


def run_env(context: MigrationContext, target_metadata: MetaData) -> None:
    """Body of both env.py files: online migrations only (we always have a database)."""
    config = context.config
    database = config.attributes.get("database") or Path(_required_option(config, "script_location")).name
    engine = make_engine(_required_option(config, "sqlalchemy.url"))
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
