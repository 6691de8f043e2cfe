"""indexes for the sharing half of the placement rule: entity versions by handle, handles by preview

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 20:15:00
"""

from alembic import op

from costalloc_pipeline.schema import ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.create_index("ix_entity_replication_handle", "entity_replication", ["file_handle_id", "project_id"])
    ddl.create_index("ix_file_replication_preview", "file_replication", ["preview_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_file_replication_preview", table_name="file_replication")
    op.drop_index("ix_entity_replication_handle", table_name="entity_replication")
