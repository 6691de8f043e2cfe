"""Audit of the invariants of DESIGN.md section 4 over the whole repository.

- I1: every AVAILABLE S3 handle in repository-managed storage points at an object that exists and
  has the handle's size and MD5. One HEAD per handle: a single-part object's ETag is its MD5; a
  multipart ETag is not, and such an object's MD5 is checked only with `read_back` (it reads the
  bytes).
- I2: no object an AVAILABLE handle references is in an archive storage class (unreadable) or
  tagged for expiry by the archive lifecycle rule.
- I3: every archive the ledger recorded is still there within its retention period (an archive
  copy at its key, or the noncurrent version an archive by DeleteObject left, by its version id),
  and no managed bucket has a lifecycle rule that expires archives or noncurrent versions early or
  expires anything else.
- I5: no ledger row names a bucket outside repository-managed storage (a retired cost allocation's
  bucket was managed when its rows were written; archives it deleted on retirement are not lost).
- Ledger: no move is left half-done: copied but not repointed (COPIED), repointed but the source not
  archived (REPOINTED). A run in progress shows its moves as half-done too: name it in
  `in_progress_runs`, or audit an idle repository.
I4 (no update on top of a concurrent change) leaves no trace afterwards; tests prove it instead.

Scale: handles stream from the database in batches and each batch's HEADs run on a thread pool
(give the S3 client a connection pool at least `concurrency` large). `sample` audits that many
random handles, plus every handle whose object the ledger says was archived (the I2 suspects).
A violation is confirmed before it is counted: the handle is read and checked again, because a
move may have repointed it since the batch was read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from costalloc_pipeline.allocations.retired import retired_buckets
from costalloc_pipeline.audit.checks import (
    AuditedHandle,
    S3Errors,
    check_handle,
    lifecycle_problems,
    md5_unproven,
    object_problem,
    tag_count,
)
from costalloc_pipeline.audit.queries import _managed, archives_overdue_before
from costalloc_pipeline.audit.run import _Audit
from costalloc_pipeline.audit.violations import (
    ARCHIVE_LOST,
    ARCHIVED,
    COPIED_NOT_REPOINTED,
    EXPIRING,
    FIRST_IDS,
    MISSING,
    OUTSIDE,
    OVERWRITTEN,
    REPOINTED_NOT_ARCHIVED,
    UNCHECKED,
    UNSAFE_LIFECYCLE,
    WRONG_MD5,
    WRONG_SIZE,
    Violations,
)
from costalloc_pipeline.db import utcnow
from costalloc_pipeline.mover.lease import live_runs
from costalloc_pipeline.placement.rule import load_placement

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "ARCHIVED",
    "ARCHIVE_LOST",
    "COPIED_NOT_REPOINTED",
    "EXPIRING",
    "FIRST_IDS",
    "MISSING",
    "OUTSIDE",
    "OVERWRITTEN",
    "REPOINTED_NOT_ARCHIVED",
    "UNCHECKED",
    "UNSAFE_LIFECYCLE",
    "WRONG_MD5",
    "WRONG_SIZE",
    "AuditedHandle",
    "S3Errors",
    "Violations",
    "archives_overdue_before",
    "audit",
    "check_handle",
    "lifecycle_problems",
    "md5_unproven",
    "object_problem",
    "tag_count",
]


def audit(
    conn: Connection,
    s3: S3Client,
    concurrency: int = 32,
    read_back: bool = False,
    batch: int = 5000,
    sample: int | None = None,
    retention_days: int | None = None,
    in_progress_runs: frozenset[str] = frozenset(),
    archive_grace_seconds: int = 0,
) -> Violations:
    """Every violation of I1, I2, I3, I5 and every half-done move, with counts and first ids.

    `sample`: audit that many random handles and archives instead of all of them. `retention_days`:
    the archive retention period; when given, bucket lifecycle rules are checked against it and
    archives older than it are not looked for. `in_progress_runs`: runs still moving, whose
    half-done ledger rows are work in progress, not violations (every run holding a live lease is
    one). `archive_grace_seconds`: a source repointed more recently than this (and a day, for the
    next run to archive it) is kept live on purpose, not a half-done move.
    """
    now = utcnow()
    in_progress_runs = in_progress_runs | live_runs(conn, now)
    placement = load_placement(conn)
    buckets = sorted(placement.managed_buckets)
    retired = retired_buckets(conn)
    violations = Violations(sampled=sample is not None)
    violations.managed_handles = conn.execute(select(func.count()).where(*_managed(buckets))).scalar_one()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        run = _Audit(
            conn,
            s3,
            pool,
            buckets,
            read_back,
            batch,
            sample,
            retention_days,
            in_progress_runs,
            archives_overdue_before(now, archive_grace_seconds),
            violations,
            retired=frozenset(retired),
            expired=frozenset(bucket for bucket, expired in retired.items() if expired),
        )
        run.handles()
        run.archives()
        if retention_days is not None:
            run.lifecycles(retention_days)
        run.ledger()
    return violations
