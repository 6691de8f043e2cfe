"""Engines for the repository and replica databases."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from sqlalchemy import Connection, Engine, Insert, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry


def utcnow() -> dt.datetime:
    """Naive UTC: SQLite, PostgreSQL and MySQL store it the same way."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_etag() -> str:
    return str(uuid.uuid4())


# MySQL's error numbers and PostgreSQL's SQLSTATEs for a transaction the database failed to end a
# deadlock or a serialization conflict: nothing of it was written, and running it again is safe.
_MYSQL_DEADLOCK = 1213
_POSTGRES_RACES = ("40P01", "40001")


def lost_a_race(error: DBAPIError) -> bool:
    """Whether the database rolled the transaction back to settle a deadlock or serialization conflict."""
    original = error.orig
    if getattr(original, "sqlstate", None) in _POSTGRES_RACES:
        return True
    arguments: tuple[object, ...] = getattr(original, "args", ())
    return bool(arguments) and arguments[0] == _MYSQL_DEADLOCK


def insert_id(conn: Connection, statement: Insert) -> int:
    """Inserts one row and returns its generated primary key: by RETURNING where the database has
    it, by the driver's last row id on MySQL 8, which has no INSERT ... RETURNING."""
    key = conn.execute(statement).inserted_primary_key
    if key is None or key[0] is None:
        raise RuntimeError(f"the database returned no id for {statement.table}")
    return int(key[0])


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API, the sensor and run workers read while one of them writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _mysql_url(parsed: URL) -> URL:
    """PyMySQL, the driver the project declares, unless the URL names another; utf8mb4 always (the
    server's default may be a 3-byte utf8 that cannot store every key)."""
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    return parsed.update_query_dict({"charset": "utf8mb4"})


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        # READ COMMITTED, as on PostgreSQL: under MySQL's default REPEATABLE READ a transaction
        # would go on reading the snapshot of its first read, and a lease or an etag another run
        # changed since would look unchanged to the checks made before each write.
        return create_engine(
            _mysql_url(parsed), isolation_level="READ COMMITTED", pool_pre_ping=True, pool_size=10, max_overflow=20
        )
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


_engines: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine (and pool) per URL and process."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return engine


def dispose_engine(url: str) -> None:
    engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()
