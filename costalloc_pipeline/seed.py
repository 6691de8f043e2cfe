"""A synthetic Synapse-like repository for demos, tests and benchmarks.

Two halves. Planning is pure: `RepositoryPlan` lazily yields every row and object of the
repository from a `SeedSpec`, a random seed and the first free ids, so it is deterministic and
never holds the whole repository in memory. Writing is I/O: `seed_repository` bootstraps the
stack, makes sure the buckets exist, streams the rows into the repository database in bulk and
uploads the objects concurrently, all in one transaction that commits only after every upload
finished (so no committed AVAILABLE handle ever points at a missing object, I1).

Special cases the pipeline must handle, per project (see `special_slots`):
- a handle referenced by versions of two entities of the same project (shared within);
- a handle of the previous project referenced by an entity of this one (shared across);
- two distinct handles with the same bucket and key, same bytes and MD5 (same-key pairs; every
  odd pair reaches into the previous project, so archiving must look beyond one project);
- previews (handles with is_preview, referenced by `files.preview_id` of their main handle);
- external handles: URLs (EXTERNAL, no bucket) and S3 objects in an external bucket whose
  storage location is not repository-managed.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import random
import time
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self, cast

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, Table, func, insert, select

from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.buckets import create_bucket_request
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.errors import BadRequest, Conflict, Unavailable
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import (
    DEFAULT_STORAGE_LOCATION_ID,
    FileStatus,
    MetadataType,
    NodeType,
    files,
    node,
    node_revision,
    storage_location,
)

if TYPE_CHECKING:
    import psycopg
    from mypy_boto3_s3 import S3Client
    from psycopg.rows import TupleRow

# Synapse user ids that "created" the synthetic data; they are not principals of this service.
SYNTHETIC_USERS = (3350001, 3350002, 3350003, 3350004, 3350005)
FILE_KINDS = (
    ("csv", "text/csv"),
    ("tsv", "text/tab-separated-values"),
    ("txt", "text/plain"),
    ("json", "application/json"),
    ("bam", "application/octet-stream"),
)
PREVIEW_NAME = "preview.png"
PREVIEW_CONTENT_TYPE = "image/png"
EXTERNAL_URL_ENDPOINT = "https://data.example.org"
# Rows per bulk statement: large enough to amortise round trips, small enough to stay lean.
BATCH_ROWS = 10_000


# --------------------------------------------------------------------------------------------
# Planning (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedSpec:
    """The shape of one synthetic repository. Counts of special cases are per project."""

    projects: int = 3
    folders_per_project: int = 2
    files_per_folder: int = 20
    versions_per_file: int = 2
    # Share of the main handles in the default bucket that get a preview.
    preview_share: float = 0.25
    shared_within_project: int = 1
    shared_across_projects: int = 1
    same_key_pairs: int = 2
    # Share of the main handles that live outside repository-managed storage.
    external_share: float = 0.1
    min_size: int = 64
    max_size: int = 4096
    upload_objects: bool = True
    upload_concurrency: int = 16
    random_seed: int = 42
    # Entity and handle ids start at id_offset + 1; None starts them above the current maximum.
    id_offset: int | None = None

    @property
    def files_per_project(self) -> int:
        return self.folders_per_project * self.files_per_folder

    @property
    def special_files_per_project(self) -> int:
        # Each special case takes one lending and one borrowing file entity.
        return 2 * (self.shared_within_project + self.shared_across_projects + self.same_key_pairs)

    def validate(self) -> None:
        counts = {
            "projects": self.projects,
            "folders per project": self.folders_per_project,
            "files per folder": self.files_per_folder,
            "versions per file": self.versions_per_file,
            "shared handles within a project": self.shared_within_project,
            "shared handles across projects": self.shared_across_projects,
            "same-key pairs": self.same_key_pairs,
            "minimum object size": self.min_size,
            "maximum object size": self.max_size,
        }
        for label, value in counts.items():
            if value < 0:
                raise BadRequest(f"{label} must not be negative, got {value}")
        if self.versions_per_file < 1:
            raise BadRequest("versions per file must be at least 1")
        if self.upload_concurrency < 1:
            raise BadRequest(f"upload concurrency must be at least 1, got {self.upload_concurrency}")
        for label, share in (("preview share", self.preview_share), ("external share", self.external_share)):
            if not 0.0 <= share <= 1.0:
                raise BadRequest(f"{label} must be between 0 and 1, got {share}")
        if self.min_size > self.max_size:
            raise BadRequest(f"minimum object size {self.min_size} is above maximum {self.max_size}")
        if self.special_files_per_project > self.files_per_project:
            raise BadRequest(
                f"the shared and same-key cases need {self.special_files_per_project} files per project "
                f"(two per case), the spec has {self.files_per_project}: add files or lower the case counts"
            )
        if self.id_offset is not None and self.id_offset < 0:
            raise BadRequest(f"id offset must not be negative, got {self.id_offset}")


@dataclass(frozen=True)
class PlanTargets:
    """What the plan needs from the world: first free ids, buckets and a timestamp."""

    first_entity_id: int
    first_handle_id: int
    default_bucket: str
    external_bucket: str
    external_storage_location_id: int
    now: datetime


@dataclass(frozen=True, slots=True)
class PlannedRow:
    table: Table
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlannedObject:
    bucket: str
    key: str
    body: bytes
    md5_hex: str


PlannedItem = PlannedRow | PlannedObject


@dataclass
class PlanTally:
    """Filled while the plan is consumed: counts and the ids of the special cases."""

    project_ids: list[int] = field(default_factory=list)
    folders: int = 0
    file_entities: int = 0
    revisions: int = 0
    handles: int = 0
    shared_within_project: list[int] = field(default_factory=list)
    shared_across_projects: list[int] = field(default_factory=list)
    same_key_pairs: list[tuple[int, int]] = field(default_factory=list)
    external_handle_ids: list[int] = field(default_factory=list)
    preview_handle_ids: list[int] = field(default_factory=list)

    @property
    def nodes(self) -> int:
        return len(self.project_ids) + self.folders + self.file_entities


class Slot(enum.Enum):
    """Role of a file entity in the special cases of its project."""

    LEND_WITHIN = "lend_within"
    LEND_ACROSS = "lend_across"
    LEND_SAME_KEY = "lend_same_key"
    BORROW_WITHIN = "borrow_within"
    BORROW_ACROSS = "borrow_across"
    TWIN = "twin"


def special_slots(spec: SeedSpec) -> dict[int, tuple[Slot, int]]:
    """File index in the project -> (slot, case number).

    Lenders come first so a borrower of the same project always finds its lender already planned;
    borrowers take the last files.
    """
    last = spec.files_per_project - 1
    slots: dict[int, tuple[Slot, int]] = {}
    cases = (
        (Slot.LEND_WITHIN, Slot.BORROW_WITHIN, spec.shared_within_project),
        (Slot.LEND_ACROSS, Slot.BORROW_ACROSS, spec.shared_across_projects),
        (Slot.LEND_SAME_KEY, Slot.TWIN, spec.same_key_pairs),
    )
    taken = 0
    for lend, borrow, count in cases:
        for case in range(count):
            slots[taken + case] = (lend, case)
            slots[last - taken - case] = (borrow, case)
        taken += count
    return slots


def uuid4_text(rng: random.Random) -> str:
    """A version 4 UUID from `rng`, a few times faster than uuid.UUID for millions of rows."""
    digits = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


class EvenShare:
    """Picks floor(n * share) of n candidates, evenly spread: exact counts, even in a tiny repository."""

    def __init__(self, share: float) -> None:
        self._share = share
        self._seen = 0

    def pick(self) -> bool:
        self._seen += 1
        return int(self._seen * self._share) > int((self._seen - 1) * self._share)


class RepositoryPlan:
    """Lazily yields the rows and objects of one synthetic repository.

    Everything but etags and timestamps follows from the spec's random seed and the first ids;
    seeding twice with one seed gives the same contents again at other ids and keys.
    """

    def __init__(self, spec: SeedSpec, targets: PlanTargets) -> None:
        self.spec = spec
        self.targets = targets
        self.tally = PlanTally()
        self._rng = random.Random(spec.random_seed)
        # Keys also depend on where the repository starts, so a second seed never reuses a key.
        self._key_rng = random.Random(f"{spec.random_seed}:{targets.first_entity_id}:{targets.first_handle_id}")
        # Etags stay unpredictable (not from the seed): they tell one row version from another.
        self._etag_rng = random.Random()
        self._slots = special_slots(spec)
        self._externals = EvenShare(spec.external_share)
        self._previews = EvenShare(spec.preview_share)
        self._next_entity_id = targets.first_entity_id
        self._next_handle_id = targets.first_handle_id

    def items(self) -> Iterator[PlannedItem]:
        previous_lenders: dict[tuple[Slot, int], dict[str, Any]] = {}
        for _ in range(self.spec.projects):
            lenders: dict[tuple[Slot, int], dict[str, Any]] = {}
            yield from self._project(previous_lenders, lenders)
            previous_lenders = lenders

    # -- entities ---------------------------------------------------------------------------

    def _project(
        self,
        previous_lenders: dict[tuple[Slot, int], dict[str, Any]],
        lenders: dict[tuple[Slot, int], dict[str, Any]],
    ) -> Iterator[PlannedItem]:
        project_id = self._take_entity_id()
        self.tally.project_ids.append(project_id)
        yield self._node(project_id, f"Synthetic project {project_id}", NodeType.PROJECT, None, project_id, None)
        index = 0
        for folder_number in range(self.spec.folders_per_project):
            folder_id = self._take_entity_id()
            self.tally.folders += 1
            yield self._node(folder_id, f"folder_{folder_number}", NodeType.FOLDER, project_id, project_id, None)
            for _ in range(self.spec.files_per_folder):
                yield from self._file_entity(project_id, folder_id, self._slots.get(index), previous_lenders, lenders)
                index += 1

    def _file_entity(
        self,
        project_id: int,
        folder_id: int,
        slot: tuple[Slot, int] | None,
        previous_lenders: dict[tuple[Slot, int], dict[str, Any]],
        lenders: dict[tuple[Slot, int], dict[str, Any]],
    ) -> Iterator[PlannedItem]:
        entity_id = self._take_entity_id()
        self.tally.file_entities += 1
        extension, content_type = self._rng.choice(FILE_KINDS)
        name = f"file_{entity_id}.{extension}"
        borrowed = self._borrowed_handle(slot, previous_lenders, lenders)
        versions = self.spec.versions_per_file + int(borrowed is not None)
        yield self._node(entity_id, name, NodeType.FILE, folder_id, project_id, versions)
        # A lender's first version must be in repository-managed storage: that is what gets moved.
        lends = slot is not None and slot[0] in (Slot.LEND_WITHIN, Slot.LEND_ACROSS, Slot.LEND_SAME_KEY)
        for number in range(1, self.spec.versions_per_file + 1):
            handle = yield from self._main_handle(name, content_type, managed=lends and number == 1)
            # `slot is not None` is implied by `lends` (and below by `borrowed`); restated for the type.
            if slot is not None and lends and number == 1:
                lenders[slot] = handle
            yield self._revision(entity_id, number, handle["id"])
        if slot is not None and borrowed is not None:
            yield from self._borrow(slot, borrowed, entity_id, versions)

    def _borrowed_handle(
        self,
        slot: tuple[Slot, int] | None,
        previous_lenders: dict[tuple[Slot, int], dict[str, Any]],
        lenders: dict[tuple[Slot, int], dict[str, Any]],
    ) -> dict[str, Any] | None:
        if slot is None:
            return None
        kind, case = slot
        if kind is Slot.BORROW_WITHIN:
            return lenders[(Slot.LEND_WITHIN, case)]
        if kind is Slot.BORROW_ACROSS:
            # The first project has no previous one: its across borrowers are plain files.
            return previous_lenders.get((Slot.LEND_ACROSS, case))
        if kind is Slot.TWIN:
            reach_back = case % 2 == 1 and previous_lenders
            return (previous_lenders if reach_back else lenders)[(Slot.LEND_SAME_KEY, case)]
        return None

    def _borrow(
        self, slot: tuple[Slot, int], lent: dict[str, Any], entity_id: int, number: int
    ) -> Iterator[PlannedItem]:
        kind = slot[0]
        if kind is Slot.TWIN:
            twin = self._twin_handle(lent)
            yield PlannedRow(files, twin)
            self.tally.same_key_pairs.append((lent["id"], twin["id"]))
            yield self._revision(entity_id, number, twin["id"])
            return
        if kind is Slot.BORROW_WITHIN:
            self.tally.shared_within_project.append(lent["id"])
        else:
            self.tally.shared_across_projects.append(lent["id"])
        yield self._revision(entity_id, number, lent["id"])

    # -- handles ----------------------------------------------------------------------------

    def _main_handle(self, name: str, content_type: str, managed: bool) -> Generator[PlannedItem, None, dict[str, Any]]:
        """Yields the handle (and its preview) with their objects; returns the main handle row."""
        handle_id = self._take_handle_id()
        if not managed and self._externals.pick():
            self.tally.external_handle_ids.append(handle_id)
            # Alternating, S3 first: even one external handle puts an object in the external bucket.
            if len(self.tally.external_handle_ids) % 2 == 0:
                row = self._external_url_handle(handle_id, name, content_type)
            else:
                row, obj = self._s3_handle(
                    handle_id,
                    name,
                    content_type,
                    self.targets.external_bucket,
                    self.targets.external_storage_location_id,
                )
                yield obj
            yield PlannedRow(files, row)
            return row
        row, obj = self._s3_handle(
            handle_id, name, content_type, self.targets.default_bucket, DEFAULT_STORAGE_LOCATION_ID
        )
        yield obj
        if self._previews.pick():
            preview_id = self._take_handle_id()
            preview, preview_obj = self._s3_handle(
                preview_id,
                PREVIEW_NAME,
                PREVIEW_CONTENT_TYPE,
                self.targets.default_bucket,
                DEFAULT_STORAGE_LOCATION_ID,
                is_preview=True,
            )
            self.tally.preview_handle_ids.append(preview_id)
            yield preview_obj
            yield PlannedRow(files, preview)
            row["preview_id"] = preview_id
        yield PlannedRow(files, row)
        return row

    def _s3_handle(
        self,
        handle_id: int,
        name: str,
        content_type: str,
        bucket: str,
        storage_location_id: int,
        is_preview: bool = False,
    ) -> tuple[dict[str, Any], PlannedObject]:
        created_by, body, md5_hex = self._content()
        key = f"{created_by}/{self._uuid()}/{name}"
        row = self._handle_row(
            handle_id,
            created_by,
            MetadataType.S3,
            name,
            content_type,
            len(body),
            md5_hex,
            bucket=bucket,
            key=key,
            storage_location_id=storage_location_id,
            is_preview=is_preview,
        )
        return row, PlannedObject(bucket, key, body, md5_hex)

    def _external_url_handle(self, handle_id: int, name: str, content_type: str) -> dict[str, Any]:
        # Synapse lets users declare size and MD5 of external files; ours are those of real bytes.
        created_by, body, md5_hex = self._content()
        return self._handle_row(
            handle_id,
            created_by,
            MetadataType.EXTERNAL,
            name,
            content_type,
            len(body),
            md5_hex,
            key=f"{EXTERNAL_URL_ENDPOINT}/{self._uuid()}/{name}",
            endpoint=EXTERNAL_URL_ENDPOINT,
        )

    def _twin_handle(self, original: dict[str, Any]) -> dict[str, Any]:
        """A second handle on the original's bucket and key, as a handle copy in Synapse would be."""
        self.tally.handles += 1
        twin = dict(original)
        twin.update(
            id=self._take_handle_id(),
            etag=uuid4_text(self._etag_rng),
            created_by=self._rng.choice(SYNTHETIC_USERS),
            preview_id=None,
        )
        return twin

    def _content(self) -> tuple[int, bytes, str]:
        rng = self._rng
        created_by = rng.choice(SYNTHETIC_USERS)
        body = rng.randbytes(rng.randint(self.spec.min_size, self.spec.max_size))
        return created_by, body, hashlib.md5(body).hexdigest()

    def _uuid(self) -> str:
        return uuid4_text(self._key_rng)

    def _handle_row(
        self,
        handle_id: int,
        created_by: int,
        metadata_type: MetadataType,
        name: str,
        content_type: str,
        content_size: int,
        content_md5: str,
        *,
        key: str,
        bucket: str | None = None,
        storage_location_id: int | None = None,
        endpoint: str | None = None,
        is_preview: bool = False,
    ) -> dict[str, Any]:
        self.tally.handles += 1
        now = self.targets.now
        return {
            "id": handle_id,
            "etag": uuid4_text(self._etag_rng),
            "preview_id": None,
            "created_on": now,
            "created_by": created_by,
            "updated_on": now,
            "metadata_type": metadata_type.value,
            "content_type": content_type,
            "content_size": content_size,
            "content_md5": content_md5,
            "bucket_name": bucket,
            "name": name,
            "key": key,
            "storage_location_id": storage_location_id,
            "endpoint": endpoint,
            "is_preview": is_preview,
            "status": FileStatus.AVAILABLE.value,
        }

    # -- rows -------------------------------------------------------------------------------

    def _node(
        self,
        entity_id: int,
        name: str,
        node_type: NodeType,
        parent_id: int | None,
        project_id: int,
        current_version: int | None,
    ) -> PlannedRow:
        now = self.targets.now
        return PlannedRow(
            node,
            {
                "id": entity_id,
                "name": name,
                "node_type": node_type.value,
                "parent_id": parent_id,
                "project_id": project_id,
                "current_version": current_version,
                "etag": uuid4_text(self._etag_rng),
                "created_on": now,
                "created_by": self._rng.choice(SYNTHETIC_USERS),
                "modified_on": now,
            },
        )

    def _revision(self, entity_id: int, number: int, handle_id: int) -> PlannedRow:
        self.tally.revisions += 1
        return PlannedRow(
            node_revision,
            {
                "owner_node_id": entity_id,
                "number": number,
                "file_handle_id": handle_id,
                "modified_on": self.targets.now,
            },
        )

    def _take_entity_id(self) -> int:
        entity_id = self._next_entity_id
        self._next_entity_id += 1
        return entity_id

    def _take_handle_id(self) -> int:
        handle_id = self._next_handle_id
        self._next_handle_id += 1
        return handle_id


# --------------------------------------------------------------------------------------------
# Writing (I/O)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedReport:
    """What one seed added. `objects`/`object_bytes` count distinct uploads (0 with no objects);
    the id tuples name the special cases so tests and the demo can find them."""

    project_ids: tuple[int, ...]
    nodes: int
    folders: int
    file_entities: int
    revisions: int
    handles: int
    objects: int
    object_bytes: int
    shared_within_project: tuple[int, ...]
    shared_across_projects: tuple[int, ...]
    same_key_pairs: tuple[tuple[int, int], ...]
    external_handle_ids: tuple[int, ...]
    preview_handle_ids: tuple[int, ...]
    default_bucket: str
    external_bucket: str
    external_storage_location_id: int
    # Set only when this seed bootstrapped the stack: the admin token is shown once.
    admin_token: str | None
    seconds: float


def external_bucket_name(settings: Settings) -> str:
    # Shaped like the default bucket's name, without dots (they break virtual-host TLS).
    return f"{settings.stack}-costalloc-seed-external"


def seed_repository(settings: Settings, spec: SeedSpec) -> SeedReport:
    """Add one synthetic repository beside whatever the stack already holds."""
    spec.validate()
    started = time.monotonic()
    # Bootstrap also provisions the default bucket; the external one is ours to create.
    admin_token = bootstrap(settings).admin_token
    external_bucket = external_bucket_name(settings)
    client = s3_client(settings, max_pool_connections=spec.upload_concurrency)
    ensure_bucket(client, external_bucket, settings.s3_region)
    with engine_for(settings.repository_url).begin() as conn:
        first_entity_id, first_handle_id = _first_free_ids(conn, spec.id_offset)
        targets = PlanTargets(
            first_entity_id=first_entity_id,
            first_handle_id=first_handle_id,
            default_bucket=settings.default_bucket,
            external_bucket=external_bucket,
            external_storage_location_id=_external_storage_location(conn, external_bucket),
            now=utcnow(),
        )
        plan = RepositoryPlan(spec, targets)
        rows = BulkRowWriter(conn)
        with ObjectUploader(client, spec.upload_concurrency) as uploads:
            for item in plan.items():
                if isinstance(item, PlannedRow):
                    rows.add(item)
                elif spec.upload_objects:
                    uploads.put(item)
            rows.flush()
            # The transaction commits only once every object is in place.
            uploads.wait()
    tally = plan.tally
    return SeedReport(
        project_ids=tuple(tally.project_ids),
        nodes=tally.nodes,
        folders=tally.folders,
        file_entities=tally.file_entities,
        revisions=tally.revisions,
        handles=tally.handles,
        objects=uploads.objects,
        object_bytes=uploads.object_bytes,
        shared_within_project=tuple(tally.shared_within_project),
        shared_across_projects=tuple(tally.shared_across_projects),
        same_key_pairs=tuple(tally.same_key_pairs),
        external_handle_ids=tuple(tally.external_handle_ids),
        preview_handle_ids=tuple(tally.preview_handle_ids),
        default_bucket=settings.default_bucket,
        external_bucket=external_bucket,
        external_storage_location_id=targets.external_storage_location_id,
        admin_token=admin_token,
        seconds=time.monotonic() - started,
    )


def ensure_bucket(client: S3Client, bucket: str, region: str) -> None:
    """Create the bucket unless this account already has it."""
    try:
        client.create_bucket(**create_bucket_request(bucket, region))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise Unavailable(f"cannot create bucket {bucket}: {error}") from error
    except BotoCoreError as error:
        raise Unavailable(f"cannot create bucket {bucket}: {error}") from error


def _first_free_ids(conn: Connection, id_offset: int | None) -> tuple[int, int]:
    max_entity_id = conn.scalar(select(func.max(node.c.id))) or 0
    max_handle_id = conn.scalar(select(func.max(files.c.id))) or 0
    if id_offset is None:
        return max_entity_id + 1, max_handle_id + 1
    highest = max(max_entity_id, max_handle_id)
    if id_offset < highest:
        raise Conflict(f"id offset {id_offset} is below ids already in use (up to {highest})")
    return id_offset + 1, id_offset + 1


def _external_storage_location(conn: Connection, bucket: str) -> int:
    # The table's columns are untyped (Any): the annotations state what the id column holds.
    found: int | None = conn.scalar(select(storage_location.c.id).where(storage_location.c.bucket == bucket))
    if found is not None:
        return found
    location_id: int = conn.execute(
        insert(storage_location)
        .values(
            bucket=bucket,
            upload_type="S3",
            description="external bucket of synthetic data, not repository-managed",
            created_on=utcnow(),
        )
        .returning(storage_location.c.id)
    ).scalar_one()
    return location_id


class BulkRowWriter:
    """Buffers rows per table and writes them in large batches.

    PostgreSQL gets COPY, several times faster than multi-row INSERT for bulk loads; other
    databases get an executemany INSERT.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._copy = conn.dialect.name == "postgresql"
        self._buffers: dict[Table, list[dict[str, Any]]] = {}

    def add(self, row: PlannedRow) -> None:
        buffer = self._buffers.setdefault(row.table, [])
        buffer.append(row.values)
        if len(buffer) >= BATCH_ROWS:
            self._write(row.table, buffer)
            buffer.clear()

    def flush(self) -> None:
        for table, buffer in self._buffers.items():
            if buffer:
                self._write(table, buffer)
                buffer.clear()

    def _write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not self._copy:
            self._conn.execute(insert(table), rows)
            return
        columns = [column.name for column in table.columns]
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        # COPY runs on the same driver connection, so it joins the surrounding transaction. SQLAlchemy
        # types that connection Optional[Any]; it is set while ours is open, and COPY is psycopg 3's.
        driver = cast("psycopg.Connection[TupleRow]", self._conn.connection.driver_connection)
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])


class ObjectUploader:
    """Uploads objects concurrently through one pooled client, with a bounded number in flight."""

    def __init__(self, client: S3Client, concurrency: int) -> None:
        self._client = client
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="seed-upload")
        self._in_flight: deque[Future[int]] = deque()
        self._limit = 4 * concurrency
        self.objects = 0
        self.object_bytes = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def put(self, obj: PlannedObject) -> None:
        # Bounded so a million planned objects never queue up in memory.
        if len(self._in_flight) >= self._limit:
            self._settle(self._in_flight.popleft())
        self._in_flight.append(self._pool.submit(self._upload, obj))

    def wait(self) -> None:
        while self._in_flight:
            self._settle(self._in_flight.popleft())

    def _settle(self, future: Future[int]) -> None:
        self.object_bytes += future.result()
        self.objects += 1

    def _upload(self, obj: PlannedObject) -> int:
        # S3 checks the body against Content-MD5, so a corrupted upload fails instead of landing.
        content_md5 = base64.b64encode(bytes.fromhex(obj.md5_hex)).decode("ascii")
        try:
            self._client.put_object(Bucket=obj.bucket, Key=obj.key, Body=obj.body, ContentMD5=content_md5)
        except (ClientError, BotoCoreError) as error:
            raise Unavailable(f"cannot upload s3://{obj.bucket}/{obj.key}: {error}") from error
        return len(obj.body)
