"""Prune guard: ``verify --prune`` and ``ingest`` keep out of each other's way.

A ``prunes`` row is held while a prune deletes store files, and honoured by a starting
ingest; ``ingest_runs.claim_lease_s`` lets a prune judge whether a run on another host is
still alive by the same lease its claims use.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prunes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("worker", sa.String(length=300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prunes")),
    )
    with op.batch_alter_table("ingest_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_lease_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_runs", schema=None) as batch_op:
        batch_op.drop_column("claim_lease_s")
    op.drop_table("prunes")
