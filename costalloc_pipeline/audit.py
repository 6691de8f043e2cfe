"""Audit of the invariants of DESIGN.md section 4 over the whole repository.

- I1: every AVAILABLE S3 handle in repository-managed storage points at an object that exists and
  has the handle's size and MD5. One HEAD per handle: a single-part object's ETag is its MD5; a
  multipart ETag is not, and such an object's MD5 is checked only with `read_back` (it reads the
  bytes).
- I2: no object an AVAILABLE handle references is in an archive storage class (unreadable) or
  tagged for expiry by the archive lifecycle rule.
- I3: every archive the ledger recorded is still there within its retention period, and no managed
  bucket has a lifecycle rule that expires archives early or expires anything else.
- I5: no ledger row names a bucket outside repository-managed storage.
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

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import ColumnElement, Connection, Row, Select, and_, func, not_, or_, select, tuple_, union

from costalloc_pipeline.buckets import ARCHIVE_RULE_ID, ARCHIVE_TAG
from costalloc_pipeline.db import utcnow
from costalloc_pipeline.mover.lease import live_runs
from costalloc_pipeline.mover.ledger import REPOINTED_ON
from costalloc_pipeline.mover.objects import carries_archive_tag, head, read_md5, unquote
from costalloc_pipeline.placement import live_condition, load_placement
from costalloc_pipeline.schema.repository import MoveState, files, move_ledger
from costalloc_pipeline.storage_classes import ARCHIVE_STORAGE_CLASSES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import LifecycleRuleOutputTypeDef

FIRST_IDS = 10

MISSING = "I1: object missing"
WRONG_SIZE = "I1: object size differs from the handle"
WRONG_MD5 = "I1: object MD5 differs from the handle"
ARCHIVED = "I2: object archived (unreadable) but referenced by an AVAILABLE handle"
EXPIRING = "I2: object tagged for expiry but referenced by an AVAILABLE handle"
ARCHIVE_LOST = "I3: archived object missing within its retention period"
UNSAFE_LIFECYCLE = "I3: bucket lifecycle expires archives early or expires other objects"
OUTSIDE = "I5: ledger row outside repository-managed storage"
COPIED_NOT_REPOINTED = "ledger: copied but not repointed"
REPOINTED_NOT_ARCHIVED = "ledger: repointed but source not archived"
OVERWRITTEN = "I1: object differs from the copy verified when the handle was moved there"
UNCHECKED = "unchecked: S3 refused the check"

S3Errors = (ClientError, BotoCoreError)

# A handle's id, bucket, key, size and MD5 (_HANDLE_COLUMNS); an archive's bucket, key and a handle id.
_HandleRow = tuple[int, str, str, int | None, str | None]
_ArchiveRow = tuple[str, str, int]
_Columns = TypeVar("_Columns", bound=tuple[Any, ...])


@dataclass
class Violations:
    """Counts and the first offending ids (handle ids; bucket names for bucket-wide problems)."""

    checked_handles: int = 0
    # AVAILABLE S3 handles in repository-managed storage: checked_handles of them, or a sample.
    managed_handles: int = 0
    checked_archives: int = 0
    checked_ledger_rows: int = 0
    sampled: bool = False
    found: dict[str, list[int | str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, offender: int | str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        first = self.found.setdefault(kind, [])
        if len(first) < FIRST_IDS:
            first.append(offender)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "checkedHandles": self.checked_handles,
            "managedHandles": self.managed_handles,
            "sampled": self.sampled,
            "checkedArchives": self.checked_archives,
            "checkedLedgerRows": self.checked_ledger_rows,
            "totalViolations": self.total,
            "violations": {
                kind: {"count": self.counts[kind], "firstIds": self.found[kind]} for kind in sorted(self.counts)
            },
        }


@dataclass(frozen=True)
class AuditedHandle:
    id: int
    bucket: str
    key: str
    size: int | None
    md5: str | None


# --- pure decisions -------------------------------------------------------------------------------


def _plain_etag(found: Mapping[str, Any]) -> str:
    return unquote(str(found["ETag"]))


def object_problem(handle: AuditedHandle, found: Mapping[str, Any] | None) -> str | None:
    """What a HEAD answer (None: no object) says is wrong with a handle's object."""
    if found is None:
        return MISSING
    if found.get("StorageClass") in ARCHIVE_STORAGE_CLASSES:
        return ARCHIVED
    if handle.size is not None and found["ContentLength"] != handle.size:
        return WRONG_SIZE
    etag = _plain_etag(found)
    if handle.md5 and "-" not in etag and etag != handle.md5.lower():
        return WRONG_MD5
    return None


def md5_unproven(handle: AuditedHandle, found: Mapping[str, Any]) -> bool:
    """A multipart ETag is not an MD5: only reading the object proves the handle's checksum."""
    return bool(handle.md5) and "-" in _plain_etag(found)


def tag_count(found: Mapping[str, Any]) -> int:
    headers = found.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return int(headers.get("x-amz-tagging-count") or 0)


def _matches_archive_tag(rule_filter: Mapping[str, Any]) -> bool:
    key, value = ARCHIVE_TAG
    tags = [rule_filter["Tag"]] if "Tag" in rule_filter else rule_filter.get("And", {}).get("Tags", [])
    return {"Key": key, "Value": value} in tags


def lifecycle_problems(rules: Iterable[Mapping[str, Any]], retention_days: int) -> list[str]:
    """Ids of enabled rules that expire archives before `retention_days`, or expire objects that
    are not archives (every live object of the bucket could go)."""
    unsafe = []
    for rule in rules:
        expiration = rule.get("Expiration", {})
        if rule.get("Status") != "Enabled" or not ("Days" in expiration or "Date" in expiration):
            continue
        archives_only = _matches_archive_tag(rule.get("Filter", {}))
        if not archives_only or expiration.get("Days", 0) < retention_days:
            unsafe.append(str(rule.get("ID", ARCHIVE_RULE_ID)))
    return unsafe


# --- queries --------------------------------------------------------------------------------------


def _managed(buckets: Sequence[str]) -> tuple[ColumnElement[bool], ...]:
    return (live_condition(files, buckets),)


_HANDLE_COLUMNS = (files.c.id, files.c.bucket_name, files.c.key, files.c.content_size, files.c.content_md5)
_ARCHIVED = and_(move_ledger.c.state == MoveState.DONE.value, move_ledger.c.archive_key.is_not(None))


def _handles_query(buckets: Sequence[str], sample: int | None) -> Select[_HandleRow]:
    if sample is None:
        return select(*_HANDLE_COLUMNS).where(*_managed(buckets)).order_by(files.c.id)
    sampled = select(files.c.id).where(*_managed(buckets)).order_by(func.random()).limit(sample).subquery()
    # Whatever the sample, every handle whose object the ledger archived is looked at (I2).
    archived_referenced = select(files.c.id).where(
        *_managed(buckets),
        tuple_(files.c.bucket_name, files.c.key).in_(
            select(move_ledger.c.archive_bucket, move_ledger.c.archive_key).where(_ARCHIVED)
        ),
    )
    chosen = union(select(sampled.c.id), archived_referenced).subquery()
    return select(*_HANDLE_COLUMNS).where(files.c.id.in_(select(chosen.c.id))).order_by(files.c.id)


def _archives_query(retention_days: int | None, sample: int | None) -> Select[_ArchiveRow]:
    query = (
        select(move_ledger.c.archive_bucket, move_ledger.c.archive_key, func.min(move_ledger.c.file_handle_id))
        .where(_ARCHIVED)
        .group_by(move_ledger.c.archive_bucket, move_ledger.c.archive_key)
    )
    if retention_days is not None:
        # Older archives have legitimately expired.
        query = query.where(move_ledger.c.archived_on > utcnow() - dt.timedelta(days=retention_days))
    return query.order_by(func.random()).limit(sample) if sample is not None else query


def archives_overdue_before(now: dt.datetime, archive_grace_seconds: int) -> dt.datetime:
    """Repoints at or before this moment should have had their source archived by now. With a grace
    period the archive is made by the project's next run (the rescan is daily): a day more."""
    slack = dt.timedelta(days=1) if archive_grace_seconds else dt.timedelta(0)
    return now - dt.timedelta(seconds=archive_grace_seconds) - slack


def _moved_etags(conn: Connection, handle_ids: Sequence[int]) -> dict[int, str]:
    """ETag of the verified copy each handle was repointed to, where the handle is unchanged since."""
    if not handle_ids:
        return {}
    rows = conn.execute(
        select(move_ledger.c.file_handle_id, move_ledger.c.target_object_etag)
        .join(files, files.c.id == move_ledger.c.file_handle_id)
        .where(
            move_ledger.c.file_handle_id.in_(list(handle_ids)),
            move_ledger.c.state.in_([MoveState.REPOINTED.value, MoveState.DONE.value]),
            move_ledger.c.etag_after == files.c.etag,
            move_ledger.c.target_bucket == files.c.bucket_name,
            move_ledger.c.target_object_etag.is_not(None),
        )
    )
    # .all(): dict() would take a Result, which has keys(), for a mapping. .tuples() types the rows
    # as the (id, etag) pairs they are.
    return dict(rows.tuples().all())


def _batches(conn: Connection, query: Select[_Columns], batch: int) -> Iterator[list[Row[_Columns]]]:
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
    for rows in result.partitions():
        yield list(rows)


# --- checks against S3 ----------------------------------------------------------------------------


def check_handle(s3: S3Client, handle: AuditedHandle, read_back: bool, moved_etag: str | None = None) -> str | None:
    """`moved_etag`: the ETag of the copy verified when costalloc moved the handle here (the handle
    unchanged since): another object at that key now means the copy was overwritten."""
    try:
        found = head(s3, handle.bucket, handle.key)
        problem = object_problem(handle, found)
        if problem is not None or found is None:
            return problem
        if moved_etag is not None and _plain_etag(found) != moved_etag.lower():
            return OVERWRITTEN
        if tag_count(found) and carries_archive_tag(s3, handle.bucket, handle.key):
            return EXPIRING
        if read_back and md5_unproven(handle, found):
            size, md5 = read_md5(s3, handle.bucket, handle.key)
            if handle.size is not None and size != handle.size:
                return WRONG_SIZE
            if md5 != (handle.md5 or "").lower():
                return WRONG_MD5
        return None
    except S3Errors:
        return UNCHECKED


def _check_archive(s3: S3Client, bucket: str, key: str) -> str | None:
    try:
        return ARCHIVE_LOST if head(s3, bucket, key) is None else None
    except S3Errors:
        return UNCHECKED


def _bucket_rules(s3: S3Client, bucket: str) -> list[LifecycleRuleOutputTypeDef]:
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            # Archives are then kept for ever: a cost, not a loss.
            return []
        raise


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
        for rows in _batches(self.conn, _archives_query(self.retention_days, self.sample), self.batch):
            self.violations.checked_archives += len(rows)
            problems = self.pool.map(lambda row: _check_archive(self.s3, row[0], row[1]), rows)
            for (_, _, handle_id), problem in zip(rows, problems, strict=False):
                if problem is not None:
                    self.violations.add(problem, handle_id)

    def lifecycles(self, retention_days: int) -> None:
        for bucket in self.buckets:
            try:
                unsafe = lifecycle_problems(_bucket_rules(self.s3, bucket), retention_days)
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
                    not_(move_ledger.c.source_bucket.in_(self.buckets)),
                    not_(move_ledger.c.target_bucket.in_(self.buckets)),
                )
            )
            .order_by(move_ledger.c.id)
        )
        for (handle_id,) in outside:
            violations.add(OUTSIDE, handle_id)


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
        )
        run.handles()
        run.archives()
        if retention_days is not None:
            run.lifecycles(retention_days)
        run.ledger()
    return violations
