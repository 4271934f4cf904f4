"""Claims per folder part instead of per shot: one row per ~batch of shots.

Workers sharing a job now claim parts of folders before they stat or pair their files,
so a process skips the folders others hold without touching their files. Claims are
working state of running jobs only: the old per-shot claims are dropped, not converted
(upgrade while no ingest runs; a job left open simply starts afresh and counts what is
already stored as duplicates).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_claims_open")
    op.drop_table("ingest_claims")
    op.create_table(
        "ingest_folders",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("folder", sa.String(length=64), nullable=False),
        sa.Column("path", sa.LargeBinary(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "folder", name=op.f("pk_ingest_folders")),
    )
    op.create_table(
        "ingest_claims",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("folder", sa.String(length=64), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=300), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "folder", "part", name=op.f("pk_ingest_claims")),
    )
    with op.batch_alter_table("ingest_claims", schema=None) as batch_op:
        batch_op.create_index("ix_ingest_claims_open", ["job_id", "done"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ingest_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_claims_open")
    op.drop_table("ingest_claims")
    op.drop_table("ingest_folders")
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
