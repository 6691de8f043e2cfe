"""object claims outlive their run's lease by a margin

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:45:00
"""

import sqlalchemy as sa
from alembic import op

from costalloc_pipeline.schema import ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.add_column("object_claim", sa.Column("held_until", ddl.Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("object_claim") as batch:
        batch.drop_column("held_until")
