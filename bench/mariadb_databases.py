"""Fresh migrated databases on a MariaDB (or MySQL) server, created for a run and dropped afterwards."""

from __future__ import annotations

import itertools
import os
from typing import Self

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from costalloc_pipeline.db import dispose_engine
from costalloc_pipeline.schema.migrate import upgrade_all


class MariaDBDatabases:
    """Databases with the repository and replica schemas, both in each; every one made here is
    dropped on exit, whatever happened. MariaDB has no template databases: each is migrated."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._prefix = f"costalloc_bench_{os.getpid()}"
        self._names = itertools.count()
        self._created: list[str] = []
        self._admin: Engine | None = None

    def __enter__(self) -> Self:
        self._admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for name in list(reversed(self._created)):
            self.drop(name)
        if self._admin is not None:
            self._admin.dispose()

    def url_of(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        assert self._admin is not None, "use MariaDBDatabases as a context manager"
        with self._admin.connect() as conn:
            conn.execute(text(sql))

    def fresh(self) -> str:
        name = f"{self._prefix}_{next(self._names)}"
        self._execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        self._created.append(name)
        url = self.url_of(name)
        upgrade_all(url, url)
        return url

    def drop(self, name_or_url: str) -> None:
        name = make_url(name_or_url).database if "://" in name_or_url else name_or_url
        if not name:
            raise ValueError(f"no database named in {name_or_url!r}")
        dispose_engine(self.url_of(name))
        self._execute(f"DROP DATABASE IF EXISTS `{name}`")
        if name in self._created:
            self._created.remove(name)
