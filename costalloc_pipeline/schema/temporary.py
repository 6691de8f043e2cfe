"""Temporary tables: scratch rows of one connection, made and dropped inside the caller's transaction
on every database.

MySQL and MariaDB commit the open transaction on any DDL statement except CREATE and DROP with
TEMPORARY spelled out, so those are the only forms used there. A statement that failed may leave a
connection's temporary table behind (MySQL keeps it past a rollback), so making one drops any old
one first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Select, Table, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from costalloc_pipeline.schema.ddl import is_mysql


def temporary_table(name: str, *columns: Column[Any]) -> Table:
    """A table definition that CREATE makes temporary, in a metadata of its own."""
    return Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])


def create_temporary(conn: Connection, table: Table, like: Table | None = None) -> None:
    """Makes the temporary table; on MySQL `like` copies another table's definition, collations included."""
    if is_mysql(conn.dialect):
        conn.execute(text(f"DROP TEMPORARY TABLE IF EXISTS {table.name}"))
        if like is not None:
            conn.execute(text(f"CREATE TEMPORARY TABLE {table.name} LIKE {like.name}"))
            return
    else:
        table.drop(conn, checkfirst=True)
    table.create(conn)


def drop_temporary(conn: Connection, table: Table) -> None:
    if is_mysql(conn.dialect):
        conn.execute(text(f"DROP TEMPORARY TABLE {table.name}"))
    else:
        table.drop(conn)


def analyze_temporary(conn: Connection, table: Table) -> None:
    """Gives the planner the temporary table's real size, where a statement may (PostgreSQL never
    analyzes a temporary table by itself). MySQL's ANALYZE TABLE would commit the transaction; its
    optimizer asks the engine for the row count anyway. SQLite's planner guesses without statistics
    and prefers index lookups, which is what its sizes want."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {table.name}"))


def create_temporary_as(conn: Connection, table: Table, rows: Select[Any]) -> None:
    """Makes the temporary table of a query's rows (labelled as the table's columns), in one
    statement: PostgreSQL runs the query of a CREATE TABLE AS in parallel where it can, and never the
    query of an INSERT. Not on MySQL, whose keyed temporary tables are made first and then filled."""
    if is_mysql(conn.dialect):
        raise ValueError("on MySQL, create the temporary table and then insert its rows")
    table.drop(conn, checkfirst=True)
    conn.execute(_CreateTemporaryAs(table.name, rows))


class _CreateTemporaryAs(Executable, ClauseElement):
    """CREATE TEMPORARY TABLE name AS query, with the query's parameters bound as in any statement."""

    inherit_cache = False

    def __init__(self, name: str, rows: Select[Any]) -> None:
        self.name = name
        self.rows = rows


@compiles(_CreateTemporaryAs)
def _compile_create_temporary_as(element: _CreateTemporaryAs, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CREATE TEMPORARY TABLE {element.name} AS {compiler.process(element.rows, **kw)}"


@contextmanager
def scratch(conn: Connection, table: Table, like: Table | None = None) -> Iterator[Table]:
    """The temporary table for the block, dropped after it (a failure rolls it back, or leaves it
    to the next `create_temporary` of the connection)."""
    create_temporary(conn, table, like)
    yield table
    drop_temporary(conn, table)
