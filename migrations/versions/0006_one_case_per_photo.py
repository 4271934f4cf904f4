"""One photo is evidence of one case: a unique ``cases.photo_key``.

A shot used to be identified by the sha256 of its photo and of its metadata bytes, so the
same photo re-sent with re-encoded metadata (re-indented JSON, an upper-case camera id,
a non-minimal LEB128 integer) became a second case: a second fine for one offence. From
now on a shot whose photo already backs a case is a ``duplicate`` when it maps to the
same canonical case (plate, camera, violation, occurred_at), and is rejected as
``photo-conflict`` (naming the case and the differing fields) when it does not.

``photo_key`` holds the photo's sha256 and is unique, so concurrent runs on either engine
insert a photo's case once (``INSERT ... ON CONFLICT DO NOTHING``). The unique
(photo_sha256, metadata_sha256) pair stays: it is the cheap lookup that recognises
re-runs before any shot is examined, and ``verify`` pages through its order.

Cases already in the database are all kept, none changed but for ``photo_key``: where
several cases share a photo, the earliest (``created_at``, then id) gets the key, and the
others keep a NULL one, which the unique index allows. Those extra cases stay open for
review like any other; list them with
``SELECT id, photo_sha256 FROM cases WHERE photo_key IS NULL``. A new shot of such a photo
is a duplicate if it matches any of its cases, else a conflict with the keyed one.

The column is added and dropped in place (``ALTER TABLE``), never by copying the table: on
SQLite a batch-mode copy drops ``cases``, which with foreign keys on would cascade to the
reviews' assignments and transitions. Downgrading drops the key, and with it the rule.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("photo_key", sa.String(length=64), nullable=True))
    op.execute(
        """
        UPDATE cases SET photo_key = photo_sha256
        WHERE id IN (
            SELECT id FROM (
                SELECT id, row_number() OVER (
                    PARTITION BY photo_sha256 ORDER BY created_at, id
                ) AS n
                FROM cases
            ) AS ranked
            WHERE n = 1
        )
        """
    )
    op.create_index(op.f("ix_cases_photo_key"), "cases", ["photo_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_cases_photo_key"), table_name="cases")
    op.drop_column("cases", "photo_key")
