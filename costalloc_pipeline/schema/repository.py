"""Tables of the repository database (DESIGN.md section 2), the source of truth."""

from __future__ import annotations

import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from costalloc_pipeline.schema.ddl import MYSQL_KEY_PREFIX, SerialId, Timestamp

metadata = MetaData()


class MetadataType(str, enum.Enum):
    S3 = "S3"
    EXTERNAL = "EXTERNAL"
    GOOGLE_CLOUD = "GOOGLE_CLOUD"
    PROXY = "PROXY"
    EXTERNAL_OBJ_STORE = "EXTERNAL_OBJ_STORE"


class FileStatus(str, enum.Enum):
    AVAILABLE = "AVAILABLE"
    UNLINKED = "UNLINKED"
    ARCHIVED = "ARCHIVED"


class NodeType(str, enum.Enum):
    PROJECT = "PROJECT"
    FOLDER = "FOLDER"
    FILE = "FILE"


class AssociationState(str, enum.Enum):
    ACTIVE = "ACTIVE"
    REMOVING = "REMOVING"
    # Only in the change log: the association is gone.
    REMOVED = "REMOVED"


class MoveState(str, enum.Enum):
    """Steps of one handle move, in protocol order (DESIGN.md section 4)."""

    STARTED = "STARTED"
    COPIED = "COPIED"
    REPOINTED = "REPOINTED"
    DONE = "DONE"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    # An interrupted attempt that a later attempt took over.
    SUPERSEDED = "SUPERSEDED"


DEFAULT_STORAGE_LOCATION_ID = 1
COST_ALLOCATION_TEAM = "Cost Allocation Team"

files = Table(
    "files",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("etag", String(36), nullable=False),
    Column("preview_id", BigInteger),
    Column("created_on", Timestamp, nullable=False),
    Column("created_by", BigInteger, nullable=False),
    Column("updated_on", Timestamp, nullable=False),
    Column("metadata_type", String(32), nullable=False),
    Column("content_type", String(256)),
    Column("content_size", BigInteger),
    Column("content_md5", String(100)),
    Column("bucket_name", String(100)),
    Column("name", String(256), nullable=False),
    Column("key", String(700)),
    Column("storage_location_id", BigInteger),
    Column("endpoint", String(512)),
    Column("is_preview", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False, default=FileStatus.AVAILABLE.value),
    Index("ix_files_key", "key"),
    Index("ix_files_bucket_key", "bucket_name", "key", mysql_length={"key": MYSQL_KEY_PREFIX}),
    Index("ix_files_updated_on", "updated_on"),
    # Who holds a handle as its preview (the placement rule's sharing through a preview: the mover's
    # live references, the check) is a range of this index instead of a scan of the whole table; with
    # the id, PostgreSQL reads the pairs from the index alone. Synapse's foreign key has one too.
    Index("ix_files_preview_id", "preview_id", "id"),
)

node = Table(
    "node",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(256), nullable=False),
    Column("node_type", String(16), nullable=False),
    Column("parent_id", BigInteger),
    Column("project_id", BigInteger),
    Column("current_version", BigInteger),
    Column("etag", String(36), nullable=False),
    Column("created_on", Timestamp, nullable=False),
    Column("created_by", BigInteger, nullable=False),
    Column("modified_on", Timestamp, nullable=False),
    Index("ix_node_project_id", "project_id"),
    Index("ix_node_parent_id", "parent_id"),
    Index("ix_node_modified_on", "modified_on"),
)

node_revision = Table(
    "node_revision",
    metadata,
    Column("owner_node_id", BigInteger, primary_key=True, autoincrement=False),
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("file_handle_id", BigInteger),
    Column("modified_on", Timestamp, nullable=False),
    Index("ix_node_revision_file_handle_id", "file_handle_id"),
    Index("ix_node_revision_modified_on", "modified_on"),
)

storage_location = Table(
    "storage_location",
    metadata,
    Column("id", SerialId, primary_key=True),
    Column("bucket", String(100), nullable=False, unique=True),
    Column("upload_type", String(16), nullable=False, default="S3"),
    Column("description", String(512)),
    Column("created_on", Timestamp, nullable=False),
)

principal = Table(
    "principal",
    metadata,
    Column("id", SerialId, primary_key=True),
    Column("user_name", String(100), nullable=False, unique=True),
    Column("created_on", Timestamp, nullable=False),
)

team = Table(
    "team",
    metadata,
    Column("id", SerialId, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_on", Timestamp, nullable=False),
)

team_member = Table(
    "team_member",
    metadata,
    Column("team_id", BigInteger, ForeignKey("team.id"), primary_key=True),
    Column("principal_id", BigInteger, ForeignKey("principal.id"), primary_key=True),
    Column("added_on", Timestamp, nullable=False),
)

api_token = Table(
    "api_token",
    metadata,
    Column("id", SerialId, primary_key=True),
    Column("principal_id", BigInteger, ForeignKey("principal.id"), nullable=False),
    # SHA-256 of the token; the token itself is shown once and never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_on", Timestamp, nullable=False),
    Column("expires_on", Timestamp),
    Column("revoked", Boolean, nullable=False, default=False),
)

cost_allocation = Table(
    "cost_allocation",
    metadata,
    Column("id", SerialId, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("bucket", String(63), nullable=False, unique=True),
    Column("storage_location_id", BigInteger, ForeignKey("storage_location.id"), nullable=False),
    Column("created_by", BigInteger, ForeignKey("principal.id"), nullable=False),
    Column("created_on", Timestamp, nullable=False),
    Column("etag", String(36), nullable=False),
)

cost_allocation_project = Table(
    "cost_allocation_project",
    metadata,
    Column("project_id", BigInteger, primary_key=True, autoincrement=False),
    Column("cost_allocation_id", BigInteger, ForeignKey("cost_allocation.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("change_number", BigInteger, nullable=False),
    Column("updated_on", Timestamp, nullable=False),
    Index("ix_cost_allocation_project_allocation", "cost_allocation_id"),
)

# Append-only log of association changes; its id is the sensor's high-water mark.
cost_allocation_change = Table(
    "cost_allocation_change",
    metadata,
    Column("id", SerialId, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("cost_allocation_id", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("changed_by", BigInteger),
    Column("changed_on", Timestamp, nullable=False),
)

move_ledger = Table(
    "move_ledger",
    metadata,
    Column("id", SerialId, primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("file_handle_id", BigInteger, nullable=False),
    Column("source_bucket", String(100), nullable=False),
    # NULL when the handle had no key: the row records why it could not move.
    Column("source_key", String(700)),
    Column("target_bucket", String(100), nullable=False),
    Column("target_storage_location_id", BigInteger, nullable=False),
    Column("content_size", BigInteger),
    Column("etag_before", String(36)),
    Column("etag_after", String(36)),
    # ETag of the verified copy in the target bucket: lets a resumed move reuse it.
    Column("target_object_etag", String(100)),
    # The source object the copy was made from (its ETag, and its version in a versioned bucket):
    # the archive removes exactly that object, never bytes written at the key since.
    Column("source_object_etag", String(100)),
    Column("source_version_id", String(1024)),
    Column("state", String(16), nullable=False),
    Column("error", Text),
    Column("archive_bucket", String(100)),
    Column("archive_key", String(700)),
    # mover/archive_method.py: "copy" (an archive-class copy at the key; NULL on rows written before
    # there was a choice) or "delete" (the version archive_version_id became noncurrent).
    Column("archive_method", String(8)),
    Column("archive_version_id", String(1024)),
    Column("archived_on", Timestamp),
    # When the handle was repointed: the source is archived only after the grace period from here.
    Column("repointed_on", Timestamp),
    Column("started_on", Timestamp, nullable=False),
    Column("updated_on", Timestamp, nullable=False),
    Index("ix_move_ledger_file_handle_id", "file_handle_id"),
    Index("ix_move_ledger_state", "state"),
    Index("ix_move_ledger_project_id", "project_id"),
)


# One writer per project (DESIGN.md section 4): the run that may move a project's files now. A run
# renews its lease as it goes and checks it in the transaction of every repoint; a run that lost it
# stops. An expired lease is a run that died.
relocation_lease = Table(
    "relocation_lease",
    metadata,
    Column("project_id", BigInteger, primary_key=True, autoincrement=False),
    Column("run_id", String(64), nullable=False),
    Column("target_bucket", String(100), nullable=False),
    Column("acquired_on", Timestamp, nullable=False),
    Column("expires_on", Timestamp, nullable=False),
    Index("ix_relocation_lease_run_id", "run_id"),
)

# Objects a live run is about to write (the target of a copy) or to archive. While a claim stands,
# no other run copies to, reuses or archives that object, so two different sources never meet at
# one key and an archive never races a move. A claim of a run without a live lease is stale.
object_claim = Table(
    "object_claim",
    metadata,
    # SHA-256 of bucket and key: a short primary key whatever the key's length.
    Column("object_id", String(64), primary_key=True),
    Column("bucket", String(100), nullable=False),
    Column("key", String(700), nullable=False),
    Column("run_id", String(64), nullable=False),
    # The object a copy claim copies from; NULL for an archive claim.
    Column("source_bucket", String(100)),
    Column("claimed_on", Timestamp, nullable=False),
    # The claim stands until then even when its run's lease is gone (see claims.py); NULL: only
    # while the run's lease is live.
    Column("held_until", Timestamp),
    Index("ix_object_claim_run_id", "run_id"),
)
