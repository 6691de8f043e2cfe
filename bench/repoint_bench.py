"""Repoint throughput on PostgreSQL: the mover's batched, etag-conditional `repoint`, against the
per-row autocommit UPDATE a simple script would issue, in the same run on the same kind of rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from bench.bulk_rows import VERSIONS, insert_projects, layout
from bench.servers import PostgresDatabases
from costalloc_pipeline.db import engine_for, new_etag, utcnow
from costalloc_pipeline.mover.repoint import Repoint, repoint
from costalloc_pipeline.placement.rule import Target
from costalloc_pipeline.schema.repository import files

SOURCE_BUCKET = "bench-costalloc-default"
TARGET = Target(bucket="bench-ca-repoint-target", storage_location_id=2)


@dataclass(frozen=True)
class RepointResult:
    handles: int
    seconds: float
    baseline_handles: int
    baseline_seconds: float

    @property
    def handles_per_second(self) -> float:
        return self.handles / self.seconds

    @property
    def baseline_per_second(self) -> float:
        return self.baseline_handles / self.baseline_seconds


class RepointMismatch(RuntimeError):
    pass


def _moves(engine: Engine) -> list[Repoint]:
    with engine.connect() as conn:
        rows = conn.execute(select(files.c.id, files.c.etag).order_by(files.c.id)).all()
    return [Repoint(handle_id, etag, new_etag()) for handle_id, etag in rows]


def _per_row_autocommit(engine: Engine, moves: list[Repoint]) -> int:
    """One conditional UPDATE per handle, each its own transaction: the script-style baseline."""
    done = 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for move in moves:
            done += conn.execute(
                update(files)
                .where(files.c.id == move.handle_id, files.c.etag == move.etag_before)
                .values(
                    etag=move.etag_after,
                    bucket_name=TARGET.bucket,
                    storage_location_id=TARGET.storage_location_id,
                    updated_on=utcnow(),
                )
            ).rowcount
    return done


def run_repoint(
    databases: PostgresDatabases, handles: int, baseline_handles: int, say: Callable[[str], None]
) -> RepointResult:
    total = handles + baseline_handles
    total += total % VERSIONS
    url = databases.fresh()
    try:
        engine = engine_for(url)
        with engine.begin() as conn:
            insert_projects(conn, layout([total], total, total), SOURCE_BUCKET)
        moves = _moves(engine)
        batched, baseline = moves[:handles], moves[handles : handles + baseline_handles]

        started = time.perf_counter()
        with engine.begin() as conn:
            repointed = repoint(conn, batched, TARGET)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        baseline_done = _per_row_autocommit(engine, baseline)
        baseline_seconds = time.perf_counter() - started

        if len(repointed) != len(batched) or baseline_done != len(baseline):
            raise RepointMismatch(
                f"repointed {len(repointed)} of {len(batched)} (batched) and "
                f"{baseline_done} of {len(baseline)} (per row)"
            )
        result = RepointResult(len(batched), seconds, len(baseline), baseline_seconds)
        say(
            f"repoint: {result.handles_per_second:,.0f} handles/s batched, "
            f"{result.baseline_per_second:,.0f} handles/s per-row autocommit"
        )
        return result
    finally:
        databases.drop(url)
