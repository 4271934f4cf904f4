"""Ingest jobs and shot claims: several ingest processes share one dump through the database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_claims",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("shot", sa.String(length=64), nullable=False),
        sa.Column("photo_path", sa.Text(), nullable=True),
        sa.Column("metadata_path", sa.Text(), nullable=True),
        sa.Column("problem_reason", sa.String(length=32), nullable=True),
        sa.Column("problem_message", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=300), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "shot", name=op.f("pk_ingest_claims")),
    )
    with op.batch_alter_table("ingest_claims", schema=None) as batch_op:
        batch_op.create_index("ix_ingest_claims_open", ["job_id", "done"], unique=False)

    op.create_table(
        "ingest_jobs",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=300), nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ingest_jobs")),
    )
    with op.batch_alter_table("ingest_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("shard", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_ingest_runs_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ingest_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_runs_job_id"))
        batch_op.drop_column("shard")
        batch_op.drop_column("job_id")

    op.drop_table("ingest_jobs")
    with op.batch_alter_table("ingest_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_claims_open")

    op.drop_table("ingest_claims")
