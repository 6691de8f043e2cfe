"""handles by preview: an index on files(preview_id, id), as Synapse's foreign key has

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 22:45:00
"""

from alembic import op

from costalloc_pipeline.schema import ddl

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.create_index("ix_files_preview_id", "files", ["preview_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_files_preview_id", table_name="files")
