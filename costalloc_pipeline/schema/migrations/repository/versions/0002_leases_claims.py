"""relocation leases, object claims, ledger repoint time

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relocation_lease",
        sa.Column("project_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("target_bucket", sa.String(length=100), nullable=False),
        sa.Column("acquired_on", sa.DateTime(), nullable=False),
        sa.Column("expires_on", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.create_index("ix_relocation_lease_run_id", "relocation_lease", ["run_id"])
    op.create_table(
        "object_claim",
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=700), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("source_bucket", sa.String(length=100), nullable=True),
        sa.Column("claimed_on", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("object_id"),
    )
    op.create_index("ix_object_claim_run_id", "object_claim", ["run_id"])
    # Batch mode: SQLite cannot alter a column in place, so the table is copied.
    with op.batch_alter_table("move_ledger") as batch:
        batch.alter_column("source_key", existing_type=sa.String(length=700), nullable=True)
        batch.add_column(sa.Column("repointed_on", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("move_ledger") as batch:
        batch.drop_column("repointed_on")
        batch.alter_column("source_key", existing_type=sa.String(length=700), nullable=False)
    op.drop_index("ix_object_claim_run_id", "object_claim")
    op.drop_table("object_claim")
    op.drop_index("ix_relocation_lease_run_id", "relocation_lease")
    op.drop_table("relocation_lease")
