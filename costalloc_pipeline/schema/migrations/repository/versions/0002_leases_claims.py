"""relocation leases, object claims, ledger repoint time

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:10:00
"""

import sqlalchemy as sa
from alembic import op

from costalloc_pipeline.schema import ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.create_table(
        "relocation_lease",
        sa.Column("project_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("target_bucket", sa.String(length=100), nullable=False),
        sa.Column("acquired_on", ddl.Timestamp, nullable=False),
        sa.Column("expires_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("project_id"),
    )
    ddl.create_index("ix_relocation_lease_run_id", "relocation_lease", ["run_id"])
    ddl.create_table(
        "object_claim",
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=700), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("source_bucket", sa.String(length=100), nullable=True),
        sa.Column("claimed_on", ddl.Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("object_id"),
    )
    ddl.create_index("ix_object_claim_run_id", "object_claim", ["run_id"])
    # Batch mode: SQLite cannot alter a column in place, so the table is copied. Making a column
    # nullable again is harmless, so a re-run may repeat it.
    with op.batch_alter_table("move_ledger") as batch:
        batch.alter_column("source_key", existing_type=sa.String(length=700), nullable=True)
    ddl.add_column("move_ledger", sa.Column("repointed_on", ddl.Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("move_ledger") as batch:
        batch.drop_column("repointed_on")
        batch.alter_column("source_key", existing_type=sa.String(length=700), nullable=False)
    op.drop_index("ix_object_claim_run_id", "object_claim")
    op.drop_table("object_claim")
    op.drop_index("ix_relocation_lease_run_id", "relocation_lease")
    op.drop_table("relocation_lease")
