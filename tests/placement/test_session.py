"""The planning session's settings and the temporary tables made of a query, on every database."""

from __future__ import annotations

import pytest
from helpers.backends import postgresql_only
from helpers.repository_builder import bootstrapped_builder
from sqlalchemy import BigInteger, Boolean, Column, false, func, inspect, select

from costalloc_pipeline.db import engine_for
from costalloc_pipeline.placement.session import looked_up_by_key, read_in_bulk
from costalloc_pipeline.schema.ddl import is_mysql
from costalloc_pipeline.schema.repository import files
from costalloc_pipeline.schema.temporary import create_temporary_as, drop_temporary, temporary_table

JOIN_SETTINGS = ("enable_hashjoin", "enable_mergejoin", "enable_nestloop")


def _joins(conn) -> dict[str, str]:
    return {name: conn.exec_driver_sql(f"SHOW {name}").scalar_one() for name in JOIN_SETTINGS}


@postgresql_only
@pytest.mark.parametrize(
    ("block", "turned_off"),
    [(looked_up_by_key, {"enable_hashjoin", "enable_mergejoin"}), (read_in_bulk, {"enable_nestloop"})],
)
def test_a_block_turns_its_joins_off_and_puts_them_back_after_it(database_url, block, turned_off):
    with engine_for(database_url).begin() as conn:
        before = _joins(conn)
        assert set(before.values()) == {"on"}
        with block(conn):
            inside = _joins(conn)
        assert {name for name, value in inside.items() if value == "off"} == turned_off
        assert _joins(conn) == before


def test_a_temporary_table_made_of_a_query_holds_its_rows_and_is_dropped_after(settings):
    builder = bootstrapped_builder(settings)
    small, large, unsized = builder.handle(size=5), builder.handle(size=50), builder.handle(size=None)
    table = temporary_table(
        "costalloc_test_made_of_rows",
        Column("id", BigInteger, nullable=False),
        Column("large", Boolean, nullable=False),
    )
    rows = select(files.c.id.label("id"), func.coalesce(files.c.content_size > 10, false()).label("large"))
    with engine_for(settings.repository_url).begin() as conn:
        if is_mysql(conn.dialect):
            # MySQL's are made keyed, then filled.
            with pytest.raises(ValueError, match="on MySQL"):
                create_temporary_as(conn, table, rows)
            return
        # Twice: a table of the same name left by a failed statement is dropped first.
        create_temporary_as(conn, table, rows.where(files.c.id == small))
        create_temporary_as(conn, table, rows.where(files.c.id.in_([large, unsized])))
        assert sorted(conn.execute(select(table.c.id, table.c.large)).tuples()) == [(large, True), (unsized, False)]
        drop_temporary(conn, table)
        assert not inspect(conn).has_table(table.name)
