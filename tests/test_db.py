"""Which database errors are races lost: a transaction the database rolled back to settle a deadlock,
which the allocation operations run again."""

from __future__ import annotations

import threading

import pytest
from helpers.backends import BACKENDS
from helpers.repository_builder import bootstrapped_builder
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from costalloc_pipeline.db import engine_for, lost_a_race
from costalloc_pipeline.schema.repository import files


# SQLite has one writer at a time: no deadlock to lose.
@pytest.mark.parametrize("database_url", [name for name in BACKENDS if name != "sqlite"], indirect=True)
def test_a_deadlock_is_a_race_lost_and_other_errors_are_not(settings):
    builder = bootstrapped_builder(settings)
    first, second = builder.handle(), builder.handle()
    engine = engine_for(settings.repository_url)
    both_locked_one = threading.Barrier(2)
    errors: list[DBAPIError] = []

    def lock_both(order: tuple[int, int]) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(update(files).where(files.c.id == order[0]).values(name="locked"))
                both_locked_one.wait()
                conn.execute(update(files).where(files.c.id == order[1]).values(name="locked"))
        except DBAPIError as error:
            errors.append(error)

    threads = [threading.Thread(target=lock_both, args=(order,)) for order in ((first, second), (second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The database broke the cycle by failing one of the two.
    assert len(errors) == 1 and lost_a_race(errors[0])

    with pytest.raises(DBAPIError) as other, engine.connect() as conn:
        conn.exec_driver_sql("SELECT id FROM no_such_table")
    assert not lost_a_race(other.value)
