"""Millions of repository rows in seconds, generated inside PostgreSQL.

`seed_repository` builds every row in Python (about 20,000 handles a second here: minutes for
millions), and stamps them all with one timestamp, so the newest rows would be the whole repository
and an incremental refresh would re-read everything. These rows spread over a year instead, as a
real repository's do: the last minutes before the newest change hold a handful of them.

Layout: project entities, each with its file entities right under it; `versions` versions per file
entity, each version with its own S3 handle in the default bucket.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from costalloc_pipeline.db import utcnow

# Entity ids start here, above any handle id: Synapse keeps both in one id space.
FILE_ENTITY_BASE = 1_000_000_000
VERSIONS = 2
SPAN = dt.timedelta(days=365)


@dataclass(frozen=True)
class ProjectRows:
    project_id: int
    # Entity versions, hence handles, of the project.
    versions: int
    first_entity: int

    @property
    def entities(self) -> int:
        return self.versions // VERSIONS


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


# One statement per table and project; `:first`/`:last` bound the project's file entities, and
# handle ids are (entity - 1) * VERSIONS + version.
_NODES = """
INSERT INTO node (id, name, node_type, parent_id, project_id, current_version, etag, created_on, created_by,
                  modified_on)
SELECT :base_id + e, 'file_' || e || '.csv', 'FILE', :project, :project, :versions,
       md5('n' || e)::uuid::text, :start + e * :step, 3350001, :start + e * :step
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS e
"""
_REVISIONS = """
INSERT INTO node_revision (owner_node_id, number, file_handle_id, modified_on)
SELECT :base_id + e, v, (e - 1) * :versions + v, :start + e * :step
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS e, generate_series(1, :versions) AS v
"""
_HANDLES = """
INSERT INTO files (id, etag, preview_id, created_on, created_by, updated_on, metadata_type, content_type,
                   content_size, content_md5, bucket_name, name, key, storage_location_id, endpoint, is_preview, status)
SELECT h, md5('f' || h)::uuid::text, NULL, :start + e * :step, 3350001, :start + e * :step, 'S3', 'text/csv',
       1024 + h % 4096, md5(h::text), :bucket, 'file_' || e || '.csv',
       '3350001/' || md5('k' || h)::uuid || '/file_' || e || '.csv', 1, NULL, false, 'AVAILABLE'
FROM (SELECT e, (e - 1) * :versions + v AS h
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS e,
           generate_series(1, :versions) AS v) AS handles
"""


def insert_projects(conn: Connection, projects: Sequence[ProjectRows], default_bucket: str) -> None:
    total_entities = sum(project.entities for project in projects)
    start = utcnow() - SPAN
    step = SPAN / max(total_entities, 1)
    conn.execute(
        text(
            "INSERT INTO node (id, name, node_type, parent_id, project_id, current_version, etag, created_on, "
            "created_by, modified_on) SELECT p, 'Project ' || p, 'PROJECT', NULL, p, NULL, md5('p' || p)::uuid::text, "
            ":start, 3350001, :start FROM generate_series(1, CAST(:count AS bigint)) AS p"
        ),
        {"start": start, "count": len(projects)},
    )
    for project in projects:
        bounds = {
            "project": project.project_id,
            "first": project.first_entity,
            "last": project.first_entity + project.entities - 1,
            "versions": VERSIONS,
            "base_id": FILE_ENTITY_BASE,
            "start": start,
            "step": step,
            "bucket": default_bucket,
        }
        for statement in (_NODES, _REVISIONS, _HANDLES):
            conn.execute(text(statement), bounds)
    # Fresh tables have no statistics: the planner would guess, badly, for million-row joins.
    conn.execute(text("ANALYZE node"))
    conn.execute(text("ANALYZE node_revision"))
    conn.execute(text("ANALYZE files"))
