"""Tables of the replica database (Synapse's "tables" database), filled by the pipeline."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table

from costalloc_pipeline.schema.ddl import Timestamp

metadata = MetaData()

entity_replication = Table(
    "entity_replication",
    metadata,
    Column("entity_id", BigInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("project_id", BigInteger, nullable=False),
    Column("file_handle_id", BigInteger),
    Index("ix_entity_replication_project", "project_id", "file_handle_id"),
    # Who else references a handle (the sharing half of the placement rule): by handle, the project
    # in the index too, so that the lookup never reads the table (an index-only scan, a merge join).
    Index("ix_entity_replication_handle", "file_handle_id", "project_id"),
)

file_replication = Table(
    "file_replication",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("etag", String(36), nullable=False),
    Column("preview_id", BigInteger),
    Column("created_on", Timestamp, nullable=False),
    Column("created_by", BigInteger, nullable=False),
    Column("metadata_type", String(32), nullable=False),
    Column("content_type", String(256)),
    Column("content_size", BigInteger),
    Column("content_md5", String(100)),
    Column("bucket_name", String(100)),
    Column("name", String(256), nullable=False),
    Column("key", String(700)),
    Column("storage_location_id", BigInteger),
    Column("endpoint", String(512)),
    # Which handles have this one as their preview, and the previews of a set of handles: both read
    # from this narrow index instead of the wide table (a gigabyte at 3.75 million rows).
    Index("ix_file_replication_preview", "preview_id", "id"),
)

# How far each incremental refresh has read the repository (by its updated_on clock).
replication_watermark = Table(
    "replication_watermark",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("high_water", Timestamp, nullable=False),
    Column("refreshed_on", Timestamp, nullable=False),
)
