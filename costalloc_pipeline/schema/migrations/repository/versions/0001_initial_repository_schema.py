"""initial repository schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 13:57:32.741146
"""

import sqlalchemy as sa
from alembic import op

from costalloc_pipeline.schema import ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    ddl.create_table(
        "cost_allocation_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("cost_allocation_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("changed_by", sa.BigInteger(), nullable=True),
        sa.Column("changed_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_table(
        "files",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("etag", sa.String(length=36), nullable=False),
        sa.Column("preview_id", sa.BigInteger(), nullable=True),
        sa.Column("created_on", ddl.Timestamp, nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("updated_on", ddl.Timestamp, nullable=False),
        sa.Column("metadata_type", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=256), nullable=True),
        sa.Column("content_size", sa.BigInteger(), nullable=True),
        sa.Column("content_md5", sa.String(length=100), nullable=True),
        sa.Column("bucket_name", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("key", sa.String(length=700), nullable=True),
        sa.Column("storage_location_id", sa.BigInteger(), nullable=True),
        sa.Column("endpoint", sa.String(length=512), nullable=True),
        sa.Column("is_preview", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_index("ix_files_bucket_key", "files", ["bucket_name", "key"], mysql_length={"key": ddl.MYSQL_KEY_PREFIX})
    ddl.create_index("ix_files_key", "files", ["key"])
    ddl.create_index("ix_files_updated_on", "files", ["updated_on"])

    ddl.create_table(
        "move_ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("file_handle_id", sa.BigInteger(), nullable=False),
        sa.Column("source_bucket", sa.String(length=100), nullable=False),
        sa.Column("source_key", sa.String(length=700), nullable=False),
        sa.Column("target_bucket", sa.String(length=100), nullable=False),
        sa.Column("target_storage_location_id", sa.BigInteger(), nullable=False),
        sa.Column("content_size", sa.BigInteger(), nullable=True),
        sa.Column("etag_before", sa.String(length=36), nullable=True),
        sa.Column("etag_after", sa.String(length=36), nullable=True),
        sa.Column("target_object_etag", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("archive_bucket", sa.String(length=100), nullable=True),
        sa.Column("archive_key", sa.String(length=700), nullable=True),
        sa.Column("archived_on", ddl.Timestamp, nullable=True),
        sa.Column("started_on", ddl.Timestamp, nullable=False),
        sa.Column("updated_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_index("ix_move_ledger_file_handle_id", "move_ledger", ["file_handle_id"])
    ddl.create_index("ix_move_ledger_project_id", "move_ledger", ["project_id"])
    ddl.create_index("ix_move_ledger_state", "move_ledger", ["state"])

    ddl.create_table(
        "node",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("node_type", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("current_version", sa.BigInteger(), nullable=True),
        sa.Column("etag", sa.String(length=36), nullable=False),
        sa.Column("created_on", ddl.Timestamp, nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("modified_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_index("ix_node_modified_on", "node", ["modified_on"])
    ddl.create_index("ix_node_parent_id", "node", ["parent_id"])
    ddl.create_index("ix_node_project_id", "node", ["project_id"])

    ddl.create_table(
        "node_revision",
        sa.Column("owner_node_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("file_handle_id", sa.BigInteger(), nullable=True),
        sa.Column("modified_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("owner_node_id", "number"),
    )
    ddl.create_index("ix_node_revision_file_handle_id", "node_revision", ["file_handle_id"])
    ddl.create_index("ix_node_revision_modified_on", "node_revision", ["modified_on"])

    ddl.create_table(
        "principal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("created_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_name"),
    )
    ddl.create_table(
        "storage_location",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bucket", sa.String(length=100), nullable=False),
        sa.Column("upload_type", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=True),
        sa.Column("created_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bucket"),
    )
    ddl.create_table(
        "team",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("created_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    ddl.create_table(
        "api_token",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("principal_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_on", ddl.Timestamp, nullable=False),
        sa.Column("expires_on", ddl.Timestamp, nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principal.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    ddl.create_table(
        "cost_allocation",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=63), nullable=False),
        sa.Column("storage_location_id", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_on", ddl.Timestamp, nullable=False),
        sa.Column("etag", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["principal.id"],
        ),
        sa.ForeignKeyConstraint(
            ["storage_location_id"],
            ["storage_location.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bucket"),
        sa.UniqueConstraint("name"),
    )
    ddl.create_table(
        "team_member",
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("principal_id", sa.BigInteger(), nullable=False),
        sa.Column("added_on", ddl.Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principal.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["team.id"],
        ),
        sa.PrimaryKeyConstraint("team_id", "principal_id"),
    )
    ddl.create_table(
        "cost_allocation_project",
        sa.Column("project_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("cost_allocation_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("change_number", sa.BigInteger(), nullable=False),
        sa.Column("updated_on", ddl.Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["cost_allocation_id"],
            ["cost_allocation.id"],
        ),
        sa.PrimaryKeyConstraint("project_id"),
    )
    ddl.create_index("ix_cost_allocation_project_allocation", "cost_allocation_project", ["cost_allocation_id"])


def downgrade() -> None:

    with op.batch_alter_table("cost_allocation_project", schema=None) as batch_op:
        batch_op.drop_index("ix_cost_allocation_project_allocation")

    op.drop_table("cost_allocation_project")
    op.drop_table("team_member")
    op.drop_table("cost_allocation")
    op.drop_table("api_token")
    op.drop_table("team")
    op.drop_table("storage_location")
    op.drop_table("principal")
    with op.batch_alter_table("node_revision", schema=None) as batch_op:
        batch_op.drop_index("ix_node_revision_modified_on")
        batch_op.drop_index("ix_node_revision_file_handle_id")

    op.drop_table("node_revision")
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.drop_index("ix_node_project_id")
        batch_op.drop_index("ix_node_parent_id")
        batch_op.drop_index("ix_node_modified_on")

    op.drop_table("node")
    with op.batch_alter_table("move_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_move_ledger_state")
        batch_op.drop_index("ix_move_ledger_project_id")
        batch_op.drop_index("ix_move_ledger_file_handle_id")

    op.drop_table("move_ledger")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_updated_on")
        batch_op.drop_index("ix_files_key")
        batch_op.drop_index("ix_files_bucket_key")

    op.drop_table("files")
    op.drop_table("cost_allocation_change")
