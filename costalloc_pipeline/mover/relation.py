"""A batch of rows as a relation that one statement joins: the set-based form of the mover's
batched writes (the repoint, the ledger's state changes, new claims), one rule for every database.

One statement for a batch instead of an executemany of one statement a row: the database does the
rows' work, and the client builds a few parameters instead of a row's statement for each row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    FromClause,
    Insert,
    Table,
    bindparam,
    column,
    func,
    insert,
    literal,
    select,
    union_all,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine

from costalloc_pipeline.schema.ddl import is_mysql

# Rows of one statement: a few bound parameters a row, well under SQLite's, PostgreSQL's and
# MySQL's limits on parameters and packet size.
BATCH = 1000

Row = TypeVar("Row")


def batches(rows: Sequence[Row], size: int = BATCH) -> Iterator[Sequence[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def rows_relation(
    conn: Connection, name: str, columns: Sequence[tuple[str, TypeEngine[Any]]], rows: Sequence[Sequence[object]]
) -> FromClause:
    """`rows` (one value per column, in order) as a relation called `name` with these typed columns."""
    typed = [column(column_name, type_) for column_name, type_ in columns]
    if conn.dialect.name == "postgresql":
        # One array parameter a column whatever the batch size, so the statement is compiled once
        # and then cached. A VALUES list has a parameter for each value, and compiling it again for
        # every batch took about two thirds of the time of a 100,000-handle repoint (BENCHMARKS.md).
        arrays = [
            bindparam(f"{name}_{column_name}", [row[i] for row in rows], type_=ARRAY(type_))
            for i, (column_name, type_) in enumerate(columns)
        ]
        return func.unnest(*arrays).table_valued(*typed).render_derived(name=name)
    if is_mysql(conn.dialect):
        # MySQL takes neither a VALUES list in a WITH before an UPDATE nor a table function: a
        # derived table of one SELECT a row, which a multiple-table UPDATE or INSERT ... SELECT joins.
        selects = [
            select(
                *(
                    literal(value, type_).label(column_name)
                    for value, (column_name, type_) in zip(row, columns, strict=True)
                )
            )
            for row in rows
        ]
        return union_all(*selects).subquery(name)
    return values(*typed, name=name).data([tuple(row) for row in rows]).cte(name)


def insert_rows(
    conn: Connection, table: Table, names: Sequence[str], rows: Sequence[Sequence[object]], constants: dict[str, object]
) -> Insert:
    """One INSERT of a batch of rows: `rows` give the columns `names`, `constants` the columns every
    row shares (bound once, not once a row)."""
    given = rows_relation(conn, f"new_{table.name}", [(name, table.c[name].type) for name in names], rows)
    return insert(table).from_select(
        [*names, *constants],
        select(
            *(given.c[name] for name in names),
            *(literal(value, table.c[name].type).label(name) for name, value in constants.items()),
        ),
    )
