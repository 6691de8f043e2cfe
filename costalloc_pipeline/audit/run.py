"""One audit's run: streams handles and archives from the database, checks them against S3 on a
thread pool, confirms suspects, checks bucket lifecycles and the ledger, and counts violations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, and_, func, not_, or_, select

from costalloc_pipeline.archives.locate import ArchiveRecord
from costalloc_pipeline.audit.checks import (
    AuditedHandle,
    S3Errors,
    _check_archive,
    check_handle,
    lifecycle_problems,
)
from costalloc_pipeline.audit.queries import (
    _HANDLE_COLUMNS,
    _archives_query,
    _batches,
    _handles_query,
    _managed,
    _moved_etags,
)
from costalloc_pipeline.audit.violations import (
    COPIED_NOT_REPOINTED,
    OUTSIDE,
    REPOINTED_NOT_ARCHIVED,
    UNCHECKED,
    UNSAFE_LIFECYCLE,
    Violations,
)
from costalloc_pipeline.buckets import bucket_rules
from costalloc_pipeline.mover.ledger import REPOINTED_ON
from costalloc_pipeline.schema.repository import MoveState, files, move_ledger

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from mypy_boto3_s3 import S3Client


@dataclass
class _Audit:
    """One audit's connection, S3 client, thread pool and options."""

    conn: Connection
    s3: S3Client
    pool: ThreadPoolExecutor
    buckets: list[str]
    read_back: bool
    batch: int
    sample: int | None
    retention_days: int | None
    in_progress_runs: frozenset[str]
    archives_due_before: dt.datetime
    violations: Violations
    # Buckets of retired cost allocations (allocations/retired.py): their ledger rows were written
    # while they were managed; in `expired` ones the archives were deleted on purpose.
    retired: frozenset[str] = frozenset()
    expired: frozenset[str] = frozenset()

    def handles(self) -> None:
        for rows in _batches(self.conn, _handles_query(self.buckets, self.sample), self.batch):
            handles = [AuditedHandle(*row) for row in rows]
            self.violations.checked_handles += len(handles)
            moved = _moved_etags(self.conn, [h.id for h in handles])
            # The zip below waits for every check within this iteration; `moved` is bound anyway so a
            # check can never see the next batch's etags.
            problems = self.pool.map(
                lambda h, moved=moved: check_handle(self.s3, h, self.read_back, moved.get(h.id)), handles
            )
            suspects = {h.id: p for h, p in zip(handles, problems, strict=False) if p is not None}
            for handle_id, problem in sorted(self._confirm(suspects).items()):
                self.violations.add(problem, handle_id)

    def _confirm(self, suspects: Mapping[int, str]) -> dict[int, str]:
        """Re-read and re-check suspects on a fresh connection: a move may have repointed them meanwhile."""
        if not suspects:
            return {}
        with self.conn.engine.connect() as fresh:
            rows = fresh.execute(
                select(*_HANDLE_COLUMNS).where(files.c.id.in_(list(suspects)), *_managed(self.buckets))
            )
            handles = [AuditedHandle(*row) for row in rows]
            moved = _moved_etags(fresh, [h.id for h in handles])
        checked = {handle.id: check_handle(self.s3, handle, self.read_back, moved.get(handle.id)) for handle in handles}
        return {handle_id: problem for handle_id, problem in checked.items() if problem is not None}

    def archives(self) -> None:
        for batch in _batches(self.conn, _archives_query(self.retention_days, self.sample), self.batch):
            rows = [row for row in batch if row[0] not in self.expired]
            self.violations.checked_archives += len(rows)
            records = [ArchiveRecord(bucket, key, on, method, version) for bucket, key, method, version, _, on in rows]
            problems = self.pool.map(lambda record: _check_archive(self.s3, record), records)
            for row, problem in zip(rows, problems, strict=False):
                if problem is not None:
                    self.violations.add(problem, row[4])

    def lifecycles(self, retention_days: int) -> None:
        for bucket in self.buckets:
            try:
                unsafe = lifecycle_problems(bucket_rules(self.s3, bucket), retention_days)
            except S3Errors:
                self.violations.add(UNCHECKED, bucket)
                continue
            if unsafe:
                self.violations.add(UNSAFE_LIFECYCLE, bucket)

    def ledger(self) -> None:
        conn, violations = self.conn, self.violations
        violations.checked_ledger_rows = conn.execute(select(func.count()).select_from(move_ledger)).scalar_one()
        # A repoint younger than the grace period keeps its source live on purpose.
        half_done_query = select(move_ledger.c.file_handle_id, move_ledger.c.state).where(
            or_(
                move_ledger.c.state == MoveState.COPIED.value,
                and_(move_ledger.c.state == MoveState.REPOINTED.value, self.archives_due_before >= REPOINTED_ON),
            )
        )
        if self.in_progress_runs:
            half_done_query = half_done_query.where(move_ledger.c.run_id.not_in(sorted(self.in_progress_runs)))
        half_done = conn.execute(half_done_query.order_by(move_ledger.c.id))
        for handle_id, state in half_done:
            violations.add(
                COPIED_NOT_REPOINTED if state == MoveState.COPIED.value else REPOINTED_NOT_ARCHIVED, handle_id
            )
        outside = conn.execute(
            select(move_ledger.c.file_handle_id)
            .where(
                or_(
                    not_(move_ledger.c.source_bucket.in_([*self.buckets, *self.retired])),
                    not_(move_ledger.c.target_bucket.in_([*self.buckets, *self.retired])),
                )
            )
            .order_by(move_ledger.c.id)
        )
        for (handle_id,) in outside:
            violations.add(OUTSIDE, handle_id)
