"""Where a handle's archives are: the move ledger says which objects the mover archived for it
(bucket, key, when, and the version in a versioned bucket), S3 says what each is now (storage
class, restore status); plus where the handle itself lives now. Archives are found by the
handle's key, and in a versioned bucket by the version id at that key (I3)."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from costalloc_pipeline.errors import NotFound
from costalloc_pipeline.mover.archive_method import ArchiveMethod
from costalloc_pipeline.mover.objects import head
from costalloc_pipeline.schema.repository import MoveState, files, move_ledger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

# Classes whose objects must be restored before they can be read (GLACIER_IR is read at once).
RESTORABLE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
NOT_REQUESTED = "not requested"
IN_PROGRESS = "in progress"
RESTORED = "restored"
NOT_NEEDED = "no restore needed"
GONE = "gone"
_EXPIRY = re.compile(r'expiry-date="([^"]+)"')


@dataclass(frozen=True)
class RestoreStatus:
    state: str
    # Until when the restored copy is readable (naive UTC), when restored.
    until: dt.datetime | None = None

    @property
    def readable(self) -> bool:
        return self.state in (RESTORED, NOT_NEEDED)

    def describe(self) -> str:
        return f"restored until {self.until:%Y-%m-%d %H:%M} UTC" if self.until else self.state


def restore_status(found: HeadObjectOutputTypeDef | None, now: dt.datetime) -> RestoreStatus:
    """From a HEAD answer: S3's `Restore` header is `ongoing-request="true"` while the restore runs,
    then `ongoing-request="false", expiry-date="..."` while the restored copy is readable."""
    if found is None:
        return RestoreStatus(GONE)
    if found.get("StorageClass") not in RESTORABLE_CLASSES:
        return RestoreStatus(NOT_NEEDED)
    header = found.get("Restore") or ""
    if 'ongoing-request="true"' in header:
        return RestoreStatus(IN_PROGRESS)
    match = _EXPIRY.search(header)
    if 'ongoing-request="false"' in header and match:
        until = email.utils.parsedate_to_datetime(match.group(1)).astimezone(dt.UTC).replace(tzinfo=None)
        # A restored copy that expired is gone again: the object must be restored anew.
        return RestoreStatus(RESTORED, until) if until > now else RestoreStatus(NOT_REQUESTED)
    return RestoreStatus(NOT_REQUESTED)


@dataclass(frozen=True)
class Archive:
    """One archived object of a handle, as the ledger recorded it and S3 holds it now."""

    bucket: str
    key: str
    # The noncurrent version that is the archive, in a versioned bucket; None: the object at the key.
    version_id: str | None
    archived_on: dt.datetime
    expires_on: dt.datetime
    # None when the object is gone (the lifecycle rule expired it, or it was deleted).
    storage_class: str | None
    size: int | None
    etag: str | None
    restore: RestoreStatus


@dataclass(frozen=True)
class CurrentLocation:
    bucket: str | None
    key: str | None
    status: str
    size: int | None
    md5: str | None
    # The storage class of the object there, None when there is none.
    storage_class: str | None


@dataclass(frozen=True)
class HandleArchives:
    handle_id: int
    current: CurrentLocation
    archives: tuple[Archive, ...]

    def as_json(self) -> dict[str, Any]:
        def plain(value: object) -> object:
            return value.isoformat() if isinstance(value, dt.datetime) else value

        archives = [
            {
                **{k: plain(v) for k, v in asdict(a).items() if k != "restore"},
                "restore": a.restore.state,
                "restored_until": plain(a.restore.until),
            }
            for a in self.archives
        ]
        return {"handle_id": self.handle_id, "current": asdict(self.current), "archives": archives}


@dataclass(frozen=True)
class ArchiveRecord:
    """An archive as the ledger recorded it: an archive-class copy at the key (method "copy", or
    NULL on older rows), or a version at the key made noncurrent by a DeleteObject ("delete"),
    found by its version id."""

    bucket: str
    key: str
    archived_on: dt.datetime
    method: str | None = None
    version_id: str | None = None

    @property
    def by_version(self) -> bool:
        return self.method == ArchiveMethod.DELETE.value

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}" + (f" (version {self.version_id})" if self.by_version else "")


_ARCHIVED = (move_ledger.c.state == MoveState.DONE.value, move_ledger.c.archive_key.is_not(None))


def archive_records(conn: Connection, handle_id: int) -> list[ArchiveRecord]:
    """The handle's archived objects, newest first. One object archived for several moves (a shared
    key) is listed once, with its latest archive: an archive is a new object, its clock starts then."""
    rows = conn.execute(
        select(
            move_ledger.c.archive_bucket,
            move_ledger.c.archive_key,
            move_ledger.c.archive_method,
            move_ledger.c.archive_version_id,
            move_ledger.c.archived_on,
        ).where(move_ledger.c.file_handle_id == handle_id, *_ARCHIVED)
    )
    latest: dict[tuple[str, str, str | None], ArchiveRecord] = {}
    for bucket, key, method, version_id, archived_on in rows:
        record = ArchiveRecord(bucket, key, archived_on, method, version_id)
        # An archive copy is the one object at its key; each version deleted is an archive of its own.
        identity = (bucket, key, version_id if record.by_version else None)
        if identity not in latest or latest[identity].archived_on < archived_on:
            latest[identity] = record
    return sorted(latest.values(), key=lambda r: r.archived_on, reverse=True)


def find_archive(s3: S3Client, record: ArchiveRecord) -> tuple[HeadObjectOutputTypeDef | None, str | None]:
    """What S3 holds of an archive now (None: gone), with its version id when it is a version (I3)."""
    if not record.by_version:
        return head(s3, record.bucket, record.key), None
    if record.version_id is None:
        # The mover deletes only an object whose version it recorded first: this row was not its.
        return None, None
    return head(s3, record.bucket, record.key, record.version_id), record.version_id


def archived_handles(conn: Connection, project_id: int) -> list[int]:
    """Handles with an archive recorded by a move of the project."""
    query = select(move_ledger.c.file_handle_id).where(move_ledger.c.project_id == project_id, *_ARCHIVED)
    return sorted(set(conn.execute(query).scalars()))


def current_location(conn: Connection, s3: S3Client, handle_id: int) -> CurrentLocation:
    row = conn.execute(
        select(files.c.bucket_name, files.c.key, files.c.status, files.c.content_size, files.c.content_md5).where(
            files.c.id == handle_id
        )
    ).first()
    if row is None:
        raise NotFound(f"file handle {handle_id} does not exist")
    found = head(s3, row.bucket_name, row.key) if row.bucket_name and row.key else None
    storage_class = None if found is None else found.get("StorageClass") or "STANDARD"
    return CurrentLocation(row.bucket_name, row.key, row.status, row.content_size, row.content_md5, storage_class)


def describe_archive(s3: S3Client, record: ArchiveRecord, retention_days: int, now: dt.datetime) -> Archive:
    found, version_id = find_archive(s3, record)
    return Archive(
        bucket=record.bucket,
        key=record.key,
        version_id=version_id,
        archived_on=record.archived_on,
        expires_on=record.archived_on + dt.timedelta(days=retention_days),
        storage_class=None if found is None else found.get("StorageClass") or "STANDARD",
        size=None if found is None else int(found["ContentLength"]),
        etag=None if found is None else found["ETag"].strip('"').lower(),
        restore=restore_status(found, now),
    )


def locate(conn: Connection, s3: S3Client, handle_id: int, retention_days: int, now: dt.datetime) -> HandleArchives:
    """NotFound for an unknown handle, or one the mover never archived an object of."""
    current = current_location(conn, s3, handle_id)
    records = archive_records(conn, handle_id)
    if not records:
        raise NotFound(f"file handle {handle_id} has no archived object (the move ledger records none)")
    archives = tuple(describe_archive(s3, r, retention_days, now) for r in records)
    return HandleArchives(handle_id, current, archives)
