"""PostgreSQL settings for the transaction of a planning query over a whole project: the planner
and the executor are tuned for a few queries of millions of rows, for this transaction only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Connection

# PostgreSQL's memory for each hash or sort of these queries (its default is 4 MB).
HASH_MEMORY = "64MB"
# PostgreSQL's cost of a page read out of order, against 1.0 in order. Its default of 4 prices a
# spinning disk; the replica's indexes are read from memory or SSD. With 4, the planner hashed all of
# file_replication (3.75 million wide rows) to find a million-version project's 250,000 previews
# (3.3 s) instead of looking each up by id, and hashed where a merge of two indexes in handle order
# was three times faster (measured on the benchmark's replica of 3 million versions).
RANDOM_PAGE_COST = 1.1


def tune_for_planning(conn: Connection) -> None:
    """SET LOCAL: the settings end with the caller's transaction. Nothing on other databases."""
    if conn.dialect.name != "postgresql":
        return
    # Compiling these plans took a tenth of a second or more and bought nothing: simple scans and joins.
    conn.exec_driver_sql("SET LOCAL jit = off")
    # A project's million handle ids, hashed in the default 4 MB, spilled in 8 batches: 800 MB of
    # temporary files that the join waited on.
    conn.exec_driver_sql(f"SET LOCAL work_mem = '{HASH_MEMORY}'")
    conn.exec_driver_sql(f"SET LOCAL random_page_cost = {RANDOM_PAGE_COST}")


# The joins that look each row up in an index instead; a scan of the other table is more expensive
# than PostgreSQL's cost model thinks when it is read from the operating system's cache.
_TABLE_JOINS = ("enable_hashjoin", "enable_mergejoin")
# The join that looks each row up: a trap when the statistics are stale and say one row for millions.
_LOOKUP_JOINS = ("enable_nestloop",)


@contextmanager
def _joins_off(conn: Connection, names: tuple[str, ...]) -> Iterator[None]:
    """For the statements of the block, on PostgreSQL, these kinds of join are not planned; the
    settings are as before after the block. Nothing on other databases."""
    if conn.dialect.name != "postgresql":
        yield
        return
    before = {name: conn.exec_driver_sql(f"SHOW {name}").scalar_one() for name in names}
    for name in names:
        conn.exec_driver_sql(f"SET LOCAL {name} = off")
    yield
    for name, value in before.items():
        conn.exec_driver_sql(f"SET LOCAL {name} = {value}")


def looked_up_by_key(conn: Connection) -> AbstractContextManager[None]:
    """Every join of the block looks the rows up by an index, where the caller knows that the rows
    wanted are a small part of the table."""
    return _joins_off(conn, _TABLE_JOINS)


def read_in_bulk(conn: Connection) -> AbstractContextManager[None]:
    """Every join of the block hashes or merges, where the caller knows that the rows wanted are many
    whatever the statistics say (a project that arrived since the last ANALYZE is estimated at one
    row, and a nested loop over its million handles takes minutes)."""
    return _joins_off(conn, _LOOKUP_JOINS)
