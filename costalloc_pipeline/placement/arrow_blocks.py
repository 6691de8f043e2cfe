"""A query's rows as Arrow tables of a bounded size, as they arrive: memory stays flat whatever the
number of rows (COPY on PostgreSQL through psycopg, a streaming cursor elsewhere)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import CompoundSelect, Connection, Select

from costalloc_pipeline.placement.session import tune_for_planning

if TYPE_CHECKING:
    import psycopg

# Rows per fetch on SQLite, and CSV bytes per parsed block on PostgreSQL: memory stays flat.
FETCH_ROWS = 50_000
CSV_BLOCK_BYTES = 8 * 1024**2
# The queries' rows go straight into Arrow columns of a schema: Python never looks at their types.
Rows = tuple[Any, ...]


def _blocks_by_copy(
    conn: Connection, query: Select[Rows] | CompoundSelect[Rows], schema: pa.Schema
) -> Iterator[pa.Table]:
    # COPY streams the result as CSV with no per-row work in Python, and Arrow's CSV reader parses it
    # in native code: several times the rows per second of a cursor, at a fraction of the memory.
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    options = {
        # One thread: the blocks are small, and Arrow's threaded conversion once failed here with
        # "a chunk failed converting for an unknown reason" (pyarrow 26) on a million rows.
        "read_options": pacsv.ReadOptions(column_names=schema.names, use_threads=False),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        # PostgreSQL writes NULL as an unquoted empty field and an empty string as "".
        "convert_options": pacsv.ConvertOptions(
            column_types=schema,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    }
    # Only the psycopg driver takes this path (fetch_blocks): the driver's connection is psycopg's.
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    pending = io.BytesIO()
    with (
        driver.cursor() as cursor,
        # psycopg binds the parameters client-side: COPY itself takes none.
        cursor.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy,
    ):
        # Each block is whole rows, so the blocks gathered so far are a CSV document on their own.
        for block in copy:
            pending.write(block)
            if pending.tell() >= CSV_BLOCK_BYTES:
                yield pacsv.read_csv(pa.BufferReader(pending.getvalue()), **options)
                pending = io.BytesIO()
    if pending.tell():
        yield pacsv.read_csv(pa.BufferReader(pending.getvalue()), **options)


def _blocks_by_cursor(
    conn: Connection, query: Select[Rows] | CompoundSelect[Rows], schema: pa.Schema
) -> Iterator[pa.Table]:
    # Options on the statement: on the connection they would stay for its later statements.
    result = conn.execute(query.execution_options(stream_results=True, yield_per=FETCH_ROWS))
    for rows in result.partitions():
        yield pa.Table.from_arrays(
            [
                pa.array(values, type=field.type)
                for values, field in zip(zip(*rows, strict=False), schema, strict=False)
            ],
            schema=schema,
        )


def fetch_blocks(conn: Connection, query: Select[Rows] | CompoundSelect[Rows], schema: pa.Schema) -> Iterator[pa.Table]:
    """The query's rows as Arrow tables of a bounded size, as they arrive: memory stays flat."""
    tune_for_planning(conn)
    # COPY through psycopg (3); another PostgreSQL driver, or SQLite, goes through a cursor.
    if conn.dialect.driver == "psycopg":
        return _blocks_by_copy(conn, query, schema)
    return _blocks_by_cursor(conn, query, schema)
