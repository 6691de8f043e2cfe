"""initial replica schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 13:56:45.512298
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
        "entity_replication",
        sa.Column("entity_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("file_handle_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("entity_id", "version"),
    )
    ddl.create_index("ix_entity_replication_project", "entity_replication", ["project_id", "file_handle_id"])

    ddl.create_table(
        "file_replication",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("etag", sa.String(length=36), nullable=False),
        sa.Column("preview_id", sa.BigInteger(), nullable=True),
        sa.Column("created_on", ddl.Timestamp, nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("metadata_type", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=256), nullable=True),
        sa.Column("content_size", sa.BigInteger(), nullable=True),
        sa.Column("content_md5", sa.String(length=100), nullable=True),
        sa.Column("bucket_name", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("key", sa.String(length=700), nullable=True),
        sa.Column("storage_location_id", sa.BigInteger(), nullable=True),
        sa.Column("endpoint", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_table(
        "replication_watermark",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("high_water", ddl.Timestamp, nullable=False),
        sa.Column("refreshed_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("table_name"),
    )


def downgrade() -> None:

    op.drop_table("replication_watermark")
    op.drop_table("file_replication")
    with op.batch_alter_table("entity_replication", schema=None) as batch_op:
        batch_op.drop_index("ix_entity_replication_project")

    op.drop_table("entity_replication")
