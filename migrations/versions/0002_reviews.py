"""Reviews: reviewers, their leases and votes, case transitions, review settings.

Also adds ``cases.decided_at``. The settings table is seeded with K = 3 votes per level
and 15-minute leases, so the numbers live in the database, not in code.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_VOTES_PER_LEVEL = 3
DEFAULT_LEASE_MINUTES = 15


def upgrade() -> None:

    settings = op.create_table(
        "review_settings",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("votes_per_level", sa.Integer(), nullable=False),
        sa.Column("lease_minutes", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_review_settings_single_row")),
        sa.CheckConstraint("lease_minutes >= 1", name=op.f("ck_review_settings_lease_positive")),
        sa.CheckConstraint("votes_per_level >= 1", name=op.f("ck_review_settings_votes_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_settings")),
    )
    op.bulk_insert(
        settings,
        [
            {
                "id": 1,
                "votes_per_level": DEFAULT_VOTES_PER_LEVEL,
                "lease_minutes": DEFAULT_LEASE_MINUTES,
            }
        ],
    )
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("skill", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("skill >= 1 AND skill <= 100", name=op.f("ck_reviewers_skill_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviewers")),
        sa.UniqueConstraint("name", name=op.f("uq_reviewers_name")),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "verdict IN ('violation', 'no-violation')", name=op.f("ck_assignments_verdict_known")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_assignments_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["reviewers.id"],
            name=op.f("fk_assignments_reviewer_id_reviewers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint(
            "case_id",
            "level",
            "reviewer_id",
            name=op.f("uq_assignments_case_id_level_reviewer_id"),
        ),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assignments_reviewer_id"), ["reviewer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_assignments_voted_at"), ["voted_at"], unique=False)

    op.create_table(
        "case_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("from_level", sa.Integer(), nullable=False),
        sa.Column("to_level", sa.Integer(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_transitions_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_transitions")),
    )
    with op.batch_alter_table("case_transitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_transitions_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_decided_at"), ["decided_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_decided_at"))
        batch_op.drop_column("decided_at")

    with op.batch_alter_table("case_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_transitions_case_id"))

    op.drop_table("case_transitions")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignments_voted_at"))
        batch_op.drop_index(batch_op.f("ix_assignments_reviewer_id"))

    op.drop_table("assignments")
    op.drop_table("reviewers")
    op.drop_table("review_settings")
