"""The servers a benchmark talks to: moto's S3 server in its own process, and PostgreSQL databases
created for the run and dropped afterwards."""

from __future__ import annotations

import itertools
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Self

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from costalloc_pipeline.db import dispose_engine
from costalloc_pipeline.embedded import free_port, start_moto
from costalloc_pipeline.schema.migrate import upgrade_all

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class MotoServer:
    """moto's server on a free localhost port, in its own process, so that the S3 work of the tools
    under test competes with it for the CPU as a real separate service would."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._process = start_moto(self.port, log_path=self.log_path)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (Linux /proc accounting)."""
        assert self._process is not None, "the server is not running"
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    @contextmanager
    def own_core(self) -> Iterator[str]:
        """moto on the first core, this process (and the peers it starts) on the others, for the
        block: the server gets a core to itself, as a remote S3 would, and the scheduler does not
        move its busy thread between cores. Yields what was done, for the report."""
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            yield "not pinned (one core)"
            return
        clients = set(cores[1:])
        self._pin({cores[0]})
        os.sched_setaffinity(0, clients)
        try:
            yield f"moto pinned to core {cores[0]}, clients to cores {','.join(map(str, sorted(clients)))}"
        finally:
            os.sched_setaffinity(0, set(cores))
            self._pin(set(cores))

    def _pin(self, cores: set[int]) -> None:
        # Every thread of the server; threads made later (one per request) inherit the accepting
        # thread's affinity.
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            # A request thread may have just ended.
            with suppress(ProcessLookupError):
                os.sched_setaffinity(int(task.name), cores)

    def reset(self) -> None:
        """Forget every bucket and object, so each measured move starts from the same state."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=60).close()


class ServerDatabases:
    """Databases made on one server for a run: every one made here is dropped on exit, whatever
    happened. Subclasses say how a database is made and dropped on their server."""

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
        assert self._admin is not None, f"use {type(self).__name__} as a context manager"
        with self._admin.connect() as conn:
            conn.execute(text(sql))

    def _new_name(self) -> str:
        name = f"{self._prefix}_{next(self._names)}"
        self._created.append(name)
        return name

    def _drop_statement(self, name: str) -> str:
        raise NotImplementedError

    def drop(self, name_or_url: str) -> None:
        name = make_url(name_or_url).database if "://" in name_or_url else name_or_url
        if not name:
            raise ValueError(f"no database named in {name_or_url!r}")
        dispose_engine(self.url_of(name))
        self._execute(self._drop_statement(name))
        if name in self._created:
            self._created.remove(name)


class PostgresDatabases(ServerDatabases):
    """Fresh migrated databases on one PostgreSQL server: copies of a template migrated once."""

    def __init__(self, admin_url: str) -> None:
        super().__init__(admin_url)
        self._template: str | None = None

    def _create(self, template: str | None) -> str:
        name = self._new_name()
        self._execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def fresh(self) -> str:
        """The URL of a new database with the repository and replica schemas, both in it."""
        if self._template is None:
            template = self._create(None)
            url = self.url_of(template)
            upgrade_all(url, url)
            dispose_engine(url)
            self._template = template
        return self.url_of(self._create(self._template))

    def _drop_statement(self, name: str) -> str:
        return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
