"""Fresh migrated databases on a MariaDB (or MySQL) server, created for a run and dropped afterwards."""

from __future__ import annotations

from bench.servers import ServerDatabases
from costalloc_pipeline.schema.migrate import upgrade_all


class MariaDBDatabases(ServerDatabases):
    """Databases with the repository and replica schemas, both in each. MariaDB has no template
    databases: each is migrated."""

    def fresh(self) -> str:
        name = self._new_name()
        self._execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        url = self.url_of(name)
        upgrade_all(url, url)
        return url

    def _drop_statement(self, name: str) -> str:
        return f"DROP DATABASE IF EXISTS `{name}`"
