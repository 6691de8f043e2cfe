"""Writing the planned rows into the repository database in bulk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, insert

from costalloc_pipeline.seed.model import PlannedRow

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

# Rows per bulk statement: large enough to amortise round trips, small enough to stay lean.
BATCH_ROWS = 10_000


class BulkRowWriter:
    """Buffers rows per table and writes them in large batches.

    PostgreSQL gets COPY, several times faster than multi-row INSERT for bulk loads; other
    databases get an executemany INSERT.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._copy = conn.dialect.name == "postgresql"
        self._buffers: dict[Table, list[dict[str, Any]]] = {}

    def add(self, row: PlannedRow) -> None:
        buffer = self._buffers.setdefault(row.table, [])
        buffer.append(row.values)
        if len(buffer) >= BATCH_ROWS:
            self._write(row.table, buffer)
            buffer.clear()

    def flush(self) -> None:
        for table, buffer in self._buffers.items():
            if buffer:
                self._write(table, buffer)
                buffer.clear()

    def _write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not self._copy:
            self._conn.execute(insert(table), rows)
            return
        columns = [column.name for column in table.columns]
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        # COPY runs on the same driver connection, so it joins the surrounding transaction. SQLAlchemy
        # types that connection Optional[Any]; it is set while ours is open, and COPY is psycopg 3's.
        driver = cast("psycopg.Connection[TupleRow]", self._conn.connection.driver_connection)
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
