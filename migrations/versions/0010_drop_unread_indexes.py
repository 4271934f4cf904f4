"""Drop two indexes no query reads: ``ix_cases_created_at`` and ``ix_rejections_reason``.

Every index is one more B-tree written per inserted row, and ingest inserts a case (or a
rejection) per shot. No query filters or orders cases by ``created_at`` alone: the one
ordering by it (telling a duplicate from a photo conflict) first narrows to one photo
through the unique (photo_sha256, metadata_sha256) pair. Rejections are counted per run
(``ix_rejections_run_id``), and listing them by reason pages through the primary key: a
reason has 14 possible values, too few for an index to pay for its writes.

Indexes are dropped and created in place, never by copying a table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = (
    ("cases", "ix_cases_created_at", "created_at"),
    ("rejections", "ix_rejections_reason", "reason"),
)
"""(table, index, column) of each index this revision drops."""


def upgrade() -> None:
    for table, index, _ in DROPPED:
        op.drop_index(index, table_name=table)


def downgrade() -> None:
    for table, index, column in DROPPED:
        op.create_index(index, table, [column])
