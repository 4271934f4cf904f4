"""Managers' tables: the violation catalog with its fines, and car owners with contacts.

Fines are integer minor units (``fine_minor``: kopecks, cents), never floats. Neither
table references ``cases``: cases may name violations or plates the managers have not
listed yet, and the fines report shows those as unknown rather than refusing them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "violation_types",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fine_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("fine_minor >= 0", name=op.f("ck_violation_types_fine_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violation_types")),
    )
    op.create_table(
        "car_owners",
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("telegram", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "phone IS NOT NULL OR email IS NOT NULL OR telegram IS NOT NULL",
            name=op.f("ck_car_owners_has_contact"),
        ),
        sa.PrimaryKeyConstraint("plate", name=op.f("pk_car_owners")),
    )


def downgrade() -> None:
    op.drop_table("car_owners")
    op.drop_table("violation_types")
