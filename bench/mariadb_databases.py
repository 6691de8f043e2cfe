"""Fresh migrated databases on a MariaDB (or MySQL) server, created for a run and dropped afterwards."""

from __future__ import annotations

import time
from typing import Self

from sqlalchemy import text

from bench.servers import ServerDatabases
from costalloc_pipeline.schema.migrate import upgrade_all

# How long a resize of the buffer pool may take (the server moves its pages in the background).
RESIZE_SECONDS = 120


class MariaDBDatabases(ServerDatabases):
    """Databases with the repository and replica schemas, both in each. MariaDB has no template
    databases: each is migrated.

    `buffer_pool_mb`: InnoDB's buffer pool is raised to at least this for the run and put back on
    exit (0 leaves it). InnoDB reads its tables with O_DIRECT, past the operating system's cache: with
    the server's default 128 MB, a replica of millions of handles is read from disk page by page
    (the full refresh of 3 million versions wrote about 2,000 rows/s)."""

    def __init__(self, admin_url: str, buffer_pool_mb: int = 0) -> None:
        super().__init__(admin_url)
        self.buffer_pool_mb = buffer_pool_mb
        self._buffer_pool_before: int | None = None

    def __enter__(self) -> Self:
        super().__enter__()
        before = self._buffer_pool_bytes()
        self.buffer_pool_mb = max(self.buffer_pool_mb, before // 1024**2)
        if self.buffer_pool_mb * 1024**2 > before:
            self._buffer_pool_before = before
            self._set_buffer_pool(self.buffer_pool_mb * 1024**2)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._buffer_pool_before is not None:
            self._set_buffer_pool(self._buffer_pool_before)
        super().__exit__(*exc_info)

    def _buffer_pool_bytes(self) -> int:
        assert self._admin is not None
        with self._admin.connect() as conn:
            return int(conn.execute(text("SELECT @@innodb_buffer_pool_size")).scalar_one())

    def _set_buffer_pool(self, size: int) -> None:
        self._execute(f"SET GLOBAL innodb_buffer_pool_size = {int(size)}")
        # Resized online by a background thread: wait until its pages add up to the new size (a
        # second resize while one runs is refused, and the run would be measured on the old one).
        assert self._admin is not None
        deadline = time.monotonic() + RESIZE_SECONDS
        with self._admin.connect() as conn:
            page_size = int(conn.execute(text("SELECT @@innodb_page_size")).scalar_one())
            while True:
                pages = int(conn.execute(text("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_total'")).one()[1])
                if abs(pages * page_size - size) <= size // 16:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the InnoDB buffer pool was not resized to {size} bytes in {RESIZE_SECONDS} s")
                time.sleep(0.5)

    def fresh(self) -> str:
        name = self._new_name()
        self._execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        url = self.url_of(name)
        upgrade_all(url, url)
        return url

    def _drop_statement(self, name: str) -> str:
        return f"DROP DATABASE IF EXISTS `{name}`"
