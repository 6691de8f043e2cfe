"""The repository database's connection lost between the copy and the repoint (PostgreSQL: the
server ends the backends, as a failover or a restart would)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers.backends import postgresql_only
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from costalloc_pipeline.audit import COPIED_NOT_REPOINTED
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.schema.repository import MoveState

from .repository import CopyCounter

PROJECT = 10


def terminate(url: str, backend_pid: int | None = None) -> int:
    """End one backend, or every other backend of the database; returns how many ended."""
    admin = create_engine(url, poolclass=NullPool)
    which = "pid = :pid" if backend_pid is not None else "pid <> pg_backend_pid()"
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = current_database() AND {which}"
                    ),
                    {"pid": backend_pid},
                ).all()
            )
    finally:
        admin.dispose()


@contextmanager
def listening(target: Any, name: str, fn: Any) -> Iterator[None]:
    # The engine is shared by the whole test process: never leave a hook behind.
    event.listen(target, name, fn)
    try:
        yield
    finally:
        event.remove(target, name, fn)


@postgresql_only
def test_connections_lost_after_the_copies_the_run_reconnects(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    s3 = repo.client()
    copies = CopyCounter(s3)
    ended: list[int] = []

    def after_copy(**_: Any) -> None:
        if copies.into_target == 3 and not ended:
            ended.append(terminate(repo.settings.repository_url))

    s3.meta.events.register("after-call.s3.CopyObject", after_copy)
    result = move_bundle(repo.context(PROJECT, s3, concurrency=1), list(originals))

    assert ended and ended[0] > 0
    assert (result.moved_files, result.failed, copies.into_target) == (3, {}, 3)
    assert all(repo.handle(h).bucket_name == target for h in originals)
    repo.assert_intact(originals)
    assert repo.audit().counts == {}


@postgresql_only
def test_connection_lost_inside_the_repoint_transaction(repo):
    target = repo.project(PROJECT, "genomics")
    originals = repo.add_handles(3)
    ctx = repo.context(PROJECT)

    def end_backend_after_repoint(_conn, cursor, statement: str, *_: Any) -> None:
        if "UPDATE files" in statement:
            terminate(repo.settings.repository_url, cursor.connection.info.backend_pid)

    with (
        listening(ctx.repository, "after_cursor_execute", end_backend_after_repoint),
        pytest.raises(OperationalError),
    ):
        move_bundle(ctx, list(originals))

    # The repoint never committed: every handle still reads its source, nothing was archived.
    for handle_id in originals:
        handle = repo.handle(handle_id)
        assert handle.bucket_name == repo.settings.default_bucket
        assert repo.storage_class(handle.bucket_name, handle.key) == "STANDARD"
        assert repo.ledger_states(handle_id) == [MoveState.COPIED.value]
    # While the run holds its lease its half-done moves are work in progress; once it is over, not.
    assert repo.audit().counts == {}
    repo.end_run(PROJECT, ctx.run_id)
    assert repo.audit().counts == {COPIED_NOT_REPOINTED: 3}

    s3 = repo.client()
    copies = CopyCounter(s3)
    result = move_bundle(repo.context(PROJECT, s3, run_id="rerun"), list(originals))
    assert (result.moved_files, result.reused_copies, copies.into_target) == (3, 3, 0)
    assert all(repo.handle(h).bucket_name == target for h in originals)
    repo.assert_intact(originals)
    assert repo.audit().counts == {}
