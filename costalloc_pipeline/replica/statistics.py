"""Keeps the planner's statistics of a replica table fresh after a refresh changed much of it.

files_out_of_place joins the replica tables: with statistics that describe the table before a large
refresh, PostgreSQL picks nested loops over hundreds of thousands of rows (616 s instead of 4.9 s
for a 450k-handle project). Autovacuum would catch up eventually, but it may be off or slow, and the
plan of the run that follows the refresh is what matters. MySQL's InnoDB recalculates statistics
after a tenth of a table changed, in the background; the same rule makes it happen before the plan.

On PostgreSQL the same moment also vacuums the table: every upserted row left a dead version behind
that no autovacuum may come to clear, and only a vacuum marks pages all-visible, which is what lets
planning read the replica's narrow indexes alone (index-only scans; with the visibility map unset
every index entry costs a visit to the table, and the planner then prefers to scan the whole table).
"""

from __future__ import annotations

from sqlalchemy import Engine, Table, text

from costalloc_pipeline.schema.ddl import is_mysql

# Like autovacuum's default analyze scale factor: a refresh that changed a tenth of the table may
# have shifted its distributions (projects, buckets) enough to change a plan.
ANALYZE_FRACTION = 0.10
# In a huge table a tenth is millions of rows, yet one project's handles moving bucket is enough to
# mislead the plan of that project's next run. PostgreSQL analyzes a fixed-size sample whatever
# the table's size, so analyzing this often stays cheap.
ANALYZE_ROWS = 100_000


def should_analyze(rows_upserted: int, total_rows: int, full_refresh: bool) -> bool:
    """The one rule for refreshing a replica table's statistics after a refresh of it."""
    if full_refresh:
        # The table was emptied and reloaded: its statistics describe a table that is gone.
        return True
    return rows_upserted >= ANALYZE_ROWS or rows_upserted > ANALYZE_FRACTION * total_rows


def analyze(replica: Engine, table: Table) -> bool:
    """Refreshes the table's statistics; False for a database whose statement is not known here.

    Runs after the refresh committed, on a connection of its own: statistics of committed rows, and
    no statement that some databases (MySQL's ANALYZE TABLE) would let commit the refresh early.
    """
    name = replica.dialect.identifier_preparer.quote(table.name)
    dialect = replica.dialect.name
    if dialect == "postgresql":
        # VACUUM runs only outside a transaction block (a few seconds for a million-row table).
        with replica.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"VACUUM (ANALYZE) {name}"))
        return True
    with replica.begin() as conn:
        if dialect == "sqlite":
            # On SQLite, ANALYZE of the one table rather than PRAGMA optimize: the pragma applies
            # rules of its own (it analyzes only tables this connection's queries used, or whose
            # size changed tenfold), where the rule above must decide.
            conn.execute(text(f"ANALYZE {name}"))
        elif is_mysql(replica.dialect):
            # InnoDB samples a fixed number of pages, like PostgreSQL; the statement returns a
            # status row, which must be read before the connection goes back to the pool.
            conn.execute(text(f"ANALYZE TABLE {name}")).all()
        else:
            return False
    return True
