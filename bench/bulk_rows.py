"""Millions of repository rows in seconds, generated inside the database (PostgreSQL or MariaDB).

`seed_repository` builds every row in Python (about 20,000 handles a second here: minutes for
millions), and stamps them all with one timestamp, so the newest rows would be the whole repository
and an incremental refresh would re-read everything. These rows spread over a span of time instead,
as a real repository's do: the last minutes before the newest change hold a handful of them.

The shape is the seed's (costalloc_pipeline/seed): project entities, folders of file entities,
`VERSIONS` versions per file entity, each version with its own S3 handle in the default bucket,
except that
- a tenth of the version handles live outside repository-managed storage: half of them S3 objects
  in an external bucket, half external URLs;
- a quarter of them have a preview handle (in the default bucket);
- in every `SHARE_PERIOD` file entities of a project, three have a last version that is not a
  handle of their own: one names a handle of an earlier file of the project (shared within it),
  one a handle of the previous project (shared across projects), one a second handle on the same
  bucket and key as its first version's (a same-key twin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from costalloc_pipeline.db import utcnow

# Entity ids start here, above any handle id: Synapse keeps both in one id space.
FILE_ENTITY_BASE = 1_000_000_000
FOLDER_BASE = 2 * FILE_ENTITY_BASE
# Previews and twins take ids of their own, above the version handles' (1 .. versions).
PREVIEW_BASE = 400_000_000
TWIN_BASE = 800_000_000
VERSIONS = 2
FILES_PER_FOLDER = 1000
SHARE_PERIOD = 1000
EXTERNAL_BUCKET = "costalloc-bench-external"
EXTERNAL_ENDPOINT = "https://data.example.org"
SPAN = dt.timedelta(days=365)


@dataclass(frozen=True)
class ProjectRows:
    project_id: int
    # Entity versions of the project.
    versions: int
    first_entity: int

    @property
    def entities(self) -> int:
        return self.versions // VERSIONS

    @property
    def last_entity(self) -> int:
        return self.first_entity + self.entities - 1


@dataclass(frozen=True)
class Stamps:
    """Timestamps of written rows: entity e (counted from the first written) gets start + e * step."""

    start: dt.datetime
    step: dt.timedelta

    @classmethod
    def spread(cls, entities: int, end: dt.datetime) -> Stamps:
        """Over the year before `end`, as a repository's rows are."""
        return cls(end - SPAN, SPAN / max(entities, 1))

    @classmethod
    def now(cls) -> Stamps:
        """All at this moment: rows changed since any refresh."""
        return cls(utcnow(), dt.timedelta(0))


def layout(project_versions: Sequence[int], total_versions: int, filler_versions: int) -> list[ProjectRows]:
    """The measured projects first (ids 1, 2, ...), then filler projects up to the total."""
    sizes = [size - size % VERSIONS for size in project_versions]
    remaining = total_versions - sum(sizes)
    if remaining < 0:
        raise ValueError(f"the measured projects ({sum(sizes)} versions) exceed the total ({total_versions})")
    while remaining >= VERSIONS:
        size = min(filler_versions, remaining)
        size -= size % VERSIONS
        sizes.append(size)
        remaining -= size
    projects: list[ProjectRows] = []
    first_entity = 1
    for number, size in enumerate(sizes, start=1):
        projects.append(ProjectRows(project_id=number, versions=size, first_entity=first_entity))
        first_entity += size // VERSIONS
    return projects


class _Sql:
    """The few fragments in which PostgreSQL's and MariaDB's SQL differ; the rest is common SQL."""

    def __init__(self, dialect: str) -> None:
        if dialect not in ("postgresql", "mysql"):
            raise ValueError(f"bulk rows are written on PostgreSQL or MariaDB, not {dialect}")
        self.postgresql = dialect == "postgresql"

    def series(self, name: str, first: int, last: int) -> str:
        """A FROM item with one integer column `name`, first .. last."""
        if self.postgresql:
            return f"generate_series(CAST({first} AS bigint), CAST({last} AS bigint)) AS {name}"
        # MariaDB's SEQUENCE engine: a virtual table per range.
        return f"(SELECT seq AS {name} FROM seq_{first}_to_{last}) AS {name}_series"

    def div(self, dividend: str, divisor: int) -> str:
        return f"(({dividend}) / {divisor})" if self.postgresql else f"(({dividend}) DIV {divisor})"

    @property
    def key(self) -> str:
        # KEY is a reserved word in MariaDB, not in PostgreSQL.
        return "key" if self.postgresql else "`key`"

    def stamp(self, entity: str) -> str:
        """The timestamp of an entity: :start, plus :step_us microseconds per entity after :origin."""
        if self.postgresql:
            return f"(CAST(:start AS timestamp) + (({entity}) - :origin) * :step_us * interval '1 microsecond')"
        return f"(:start + INTERVAL ((({entity}) - :origin) * :step_us) MICROSECOND)"


def _file_nodes(sql: _Sql, p: ProjectRows) -> str:
    i = f"(e - {p.first_entity})"
    folder = f"{FOLDER_BASE} + {p.first_entity} + {sql.div(i, FILES_PER_FOLDER)} * {FILES_PER_FOLDER}"
    return f"""
INSERT INTO node (id, name, node_type, parent_id, project_id, current_version, etag, created_on, created_by,
                  modified_on)
SELECT {FILE_ENTITY_BASE} + e, concat('file_', e, '.csv'), 'FILE', {folder}, {p.project_id}, {VERSIONS},
       md5(concat('n', e)), {sql.stamp("e")}, 3350001 + e % 5, {sql.stamp("e")}
FROM {sql.series("e", p.first_entity, p.last_entity)}
"""


def _folders(sql: _Sql, p: ProjectRows) -> str:
    folders = (p.entities + FILES_PER_FOLDER - 1) // FILES_PER_FOLDER
    return f"""
INSERT INTO node (id, name, node_type, parent_id, project_id, current_version, etag, created_on, created_by,
                  modified_on)
SELECT {FOLDER_BASE} + {p.first_entity} + f * {FILES_PER_FOLDER}, concat('folder_', f), 'FOLDER',
       {p.project_id}, {p.project_id}, NULL, md5(concat('d', {p.project_id}, '_', f)),
       {sql.stamp(str(p.first_entity))}, 3350001, {sql.stamp(str(p.first_entity))}
FROM {sql.series("f", 0, folders - 1)}
"""


def _borrowed(sql: _Sql, p: ProjectRows, previous: ProjectRows | None) -> dict[int, str]:
    """Position in a share period -> the handle id that entity e's last version names instead of its own."""
    first_version = f"((e - 1) * {VERSIONS} + 1)"
    borrowed = {
        # Within: the first version's handle of the file entity just before it.
        1: f"((e - 2) * {VERSIONS} + 1)",
        3: f"({TWIN_BASE} + {first_version})",
    }
    if previous is not None:
        lender = f"({previous.first_entity} + {sql.div(f'e - {p.first_entity}', SHARE_PERIOD)} % {previous.entities})"
        borrowed[2] = f"(({lender} - 1) * {VERSIONS} + 1)"
    return borrowed


def _revisions(sql: _Sql, p: ProjectRows, previous: ProjectRows | None) -> str:
    position = f"((e - {p.first_entity}) % {SHARE_PERIOD})"
    cases = " ".join(
        f"WHEN v = {VERSIONS} AND {position} = {at} THEN {handle}" for at, handle in _borrowed(sql, p, previous).items()
    )
    return f"""
INSERT INTO node_revision (owner_node_id, number, file_handle_id, modified_on)
SELECT {FILE_ENTITY_BASE} + e, v, CASE {cases} ELSE (e - 1) * {VERSIONS} + v END, {sql.stamp("e")}
FROM {sql.series("e", p.first_entity, p.last_entity)}, {sql.series("v", 1, VERSIONS)}
"""


def _handle_columns(sql: _Sql) -> str:
    return (
        "id, etag, preview_id, created_on, created_by, updated_on, metadata_type, content_type, content_size, "
        f"content_md5, bucket_name, name, {sql.key}, storage_location_id, endpoint, is_preview, status"
    )


def _version_handles(sql: _Sql, p: ProjectRows, previous: ProjectRows | None, buckets: Buckets) -> str:
    """The handles of the versions that have their own (all but the borrowing ones)."""
    position = f"((e - {p.first_entity}) % {SHARE_PERIOD})"
    borrowing = " OR ".join(f"{position} = {at}" for at in _borrowed(sql, p, previous))
    # A tenth outside managed storage (every tenth handle: URLs and external S3 objects alternate);
    # every fourth has a preview (m % 4 = 1 is odd, so never one of the external ones).
    url, external = "m % 20 = 0", "m % 10 = 0"
    return f"""
INSERT INTO files ({_handle_columns(sql)})
SELECT m, md5(concat('f', m)), CASE WHEN m % 4 = 1 THEN {PREVIEW_BASE} + m END, {sql.stamp("e")},
       3350001 + m % 5, {sql.stamp("e")}, CASE WHEN {url} THEN 'EXTERNAL' ELSE 'S3' END, 'text/csv',
       1024 + m % 4096, md5(concat('c', m)),
       CASE WHEN {url} THEN NULL WHEN {external} THEN '{EXTERNAL_BUCKET}' ELSE '{buckets.default}' END,
       concat('file_', e, '.csv'),
       CASE WHEN {url} THEN concat('{EXTERNAL_ENDPOINT}/', md5(concat('k', m)), '/file_', e, '.csv')
            ELSE concat('3350001/', md5(concat('k', m)), '/file_', e, '.csv') END,
       CASE WHEN {url} THEN NULL WHEN {external} THEN {buckets.external_location} ELSE 1 END,
       CASE WHEN {url} THEN '{EXTERNAL_ENDPOINT}' END, false, 'AVAILABLE'
FROM (SELECT e, (e - 1) * {VERSIONS} + v AS m
      FROM {sql.series("e", p.first_entity, p.last_entity)}, {sql.series("v", 1, VERSIONS)}
      WHERE NOT (v = {VERSIONS} AND ({borrowing}))) AS handles
"""


def _version_range(p: ProjectRows) -> str:
    return f"id BETWEEN {(p.first_entity - 1) * VERSIONS + 1} AND {p.last_entity * VERSIONS}"


def _previews(sql: _Sql, p: ProjectRows, buckets: Buckets) -> str:
    return f"""
INSERT INTO files ({_handle_columns(sql)})
SELECT {PREVIEW_BASE} + id, md5(concat('pf', id)), NULL, created_on, created_by, updated_on, 'S3', 'image/png',
       256 + id % 1024, md5(concat('pc', id)), '{buckets.default}', 'preview.png',
       concat('3350001/', md5(concat('p', id)), '/preview.png'), 1, NULL, true, 'AVAILABLE'
FROM files WHERE {_version_range(p)} AND preview_id IS NOT NULL
"""


def _twins(sql: _Sql, p: ProjectRows) -> str:
    # A second handle on the bucket and key of the twin entity's first version, as a handle copy is.
    entity = f"({sql.div('id - 1', VERSIONS)} + 1)"
    return f"""
INSERT INTO files ({_handle_columns(sql)})
SELECT {TWIN_BASE} + id, md5(concat('t', id)), NULL, created_on, created_by, updated_on, metadata_type,
       content_type, content_size, content_md5, bucket_name, name, {sql.key}, storage_location_id, endpoint,
       false, 'AVAILABLE'
FROM files
WHERE {_version_range(p)} AND (id - 1) % {VERSIONS} = 0 AND ({entity} - {p.first_entity}) % {SHARE_PERIOD} = 3
"""


@dataclass(frozen=True)
class Buckets:
    default: str
    # The storage location of the external bucket (not repository-managed).
    external_location: int


def _statements(sql: _Sql, projects: Sequence[ProjectRows], number: int, buckets: Buckets) -> list[str]:
    project = projects[number]
    previous = projects[number - 1] if number > 0 else None
    return [
        _folders(sql, project),
        _file_nodes(sql, project),
        _revisions(sql, project, previous),
        _version_handles(sql, project, previous, buckets),
        _previews(sql, project, buckets),
        _twins(sql, project),
    ]


def insert_projects(
    conn: Connection, projects: Sequence[ProjectRows], default_bucket: str, numbers: Sequence[int] | None = None
) -> Buckets:
    """Every project entity, and the files of projects[n] for each n of `numbers` (all by default),
    spread over the year before now."""
    buckets = _insert_repository(conn, projects, default_bucket)
    written = range(len(projects)) if numbers is None else numbers
    entities = sum(projects[n].entities for n in written)
    insert_project_files(conn, projects, written, buckets, Stamps.spread(entities, utcnow()))
    return buckets


def _insert_repository(conn: Connection, projects: Sequence[ProjectRows], default_bucket: str) -> Buckets:
    """The project entities and the external bucket's storage location, before any project's files."""
    sql = _Sql(conn.dialect.name)
    now = utcnow()
    conn.execute(
        text(
            "INSERT INTO node (id, name, node_type, parent_id, project_id, current_version, etag, created_on, "
            "created_by, modified_on) SELECT p, concat('Project ', p), 'PROJECT', NULL, p, NULL, md5(concat('p', p)), "
            f":start, 3350001, :start FROM {sql.series('p', 1, len(projects))}"
        ),
        {"start": now - SPAN},
    )
    conn.execute(
        text(
            "INSERT INTO storage_location (bucket, upload_type, description, created_on) "
            "VALUES (:bucket, 'S3', 'external bucket of the benchmark, not repository-managed', :now)"
        ),
        {"bucket": EXTERNAL_BUCKET, "now": now},
    )
    location = conn.execute(text("SELECT id FROM storage_location WHERE bucket = :bucket"), {"bucket": EXTERNAL_BUCKET})
    return Buckets(default_bucket, int(location.scalar_one()))


def insert_project_files(
    conn: Connection, projects: Sequence[ProjectRows], numbers: Sequence[int], buckets: Buckets, stamps: Stamps
) -> None:
    """The files of projects[n] for each n of `numbers`: folders, file entities, versions, handles."""
    sql = _Sql(conn.dialect.name)
    microseconds = stamps.step / dt.timedelta(microseconds=1)
    # Entities are stamped in id order from the first written one.
    stamping = {
        "start": stamps.start,
        "step_us": microseconds,
        "origin": min(projects[n].first_entity for n in numbers),
    }
    for number in numbers:
        for statement in _statements(sql, projects, number, buckets):
            conn.execute(text(statement), stamping)


def touch_handles(conn: Connection, project: ProjectRows) -> int:
    """Every handle of the project's own changes (a new etag, updated now), as a bulk edit would:
    rows an incremental refresh must read again. Returns how many."""
    ranges = " OR ".join(
        f"id BETWEEN {base + (project.first_entity - 1) * VERSIONS + 1} AND {base + project.last_entity * VERSIONS}"
        for base in (0, PREVIEW_BASE, TWIN_BASE)
    )
    changed = conn.execute(
        text(f"UPDATE files SET etag = md5(concat('u', id)), updated_on = :now WHERE {ranges}"), {"now": utcnow()}
    )
    return int(changed.rowcount)


def analyze_repository(conn: Connection) -> None:
    """Statistics of the freshly written tables: the planner would guess, badly, for million-row joins."""
    for table in ("node", "node_revision", "files"):
        conn.execute(text(f"ANALYZE {table}" if conn.dialect.name == "postgresql" else f"ANALYZE TABLE {table}"))
