"""Pack store: where each photo's record is, and which store the database uses.

``photos.pack``/``photos.pack_offset`` locate a photo's record in a pack file (NULL for
photos stored as files of their own, before packs), indexed so ``verify`` reads packs in
order and reclaiming space finds a pack's live records. ``photo_stores`` holds the store's
id, also written in the store itself, and its location: one row (``slot`` = 1), so when two
processes bind a new store at once, the first insert wins and both use its id.

Columns are added in place (nullable, no table copy), so the upgrade is instant on a large
database.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("photos", sa.Column("pack", sa.String(128), nullable=True))
    op.add_column("photos", sa.Column("pack_offset", sa.BigInteger(), nullable=True))
    op.create_index("ix_photos_pack", "photos", ["pack", "pack_offset"])
    op.create_table(
        "photo_stores",
        sa.Column("slot", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_photo_stores")),
        sa.UniqueConstraint("id", name=op.f("uq_photo_stores_id")),
        sa.CheckConstraint("slot = 1", name=op.f("ck_photo_stores_one_store")),
    )


def downgrade() -> None:
    op.drop_table("photo_stores")
    op.drop_index("ix_photos_pack", table_name="photos")
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("pack_offset")
        batch.drop_column("pack")
