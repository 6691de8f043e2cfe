"""the ledger records the source object's ETag and version, and how its archive was made

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 20:30:00
"""

import sqlalchemy as sa
from alembic import op

from costalloc_pipeline.schema import ddl

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("source_object_etag", 100),
    ("source_version_id", 1024),
    ("archive_method", 8),
    ("archive_version_id", 1024),
)


def upgrade() -> None:
    for name, length in COLUMNS:
        ddl.add_column("move_ledger", sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("move_ledger") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
