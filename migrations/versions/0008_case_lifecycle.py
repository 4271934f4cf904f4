"""Close the case lifecycle: supervisors, who decided and why, fines frozen at decision.

- ``reviewers.supervisor``: supervisors decide the cases split at the highest staffed level.
- ``case_transitions.actor`` / ``note``: who made a transition by hand, and their note.
- ``cases.fine_minor``: the fine in force when a case was confirmed. Cases confirmed before
  this migration are filled from the violation catalog *as it is when the migration runs*
  (the fines in force at their decision were never recorded); confirmed cases whose
  violation is not in the catalog stay NULL (``unknown violation``) until an import
  catalogues it. A partial index finds those unpriced cases.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPRICED = "status = 'confirmed' AND fine_minor IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("reviewers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("supervisor", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("case_transitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fine_minor", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_unpriced",
            ["violation_id"],
            unique=False,
            sqlite_where=sa.text(UNPRICED),
            postgresql_where=sa.text(UNPRICED),
        )
    op.execute(
        "UPDATE cases SET fine_minor = (SELECT violation_types.fine_minor FROM violation_types"
        " WHERE violation_types.id = cases.violation_id) WHERE cases.status = 'confirmed'"
    )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_unpriced")
        batch_op.drop_column("fine_minor")
    with op.batch_alter_table("case_transitions", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("actor")
    with op.batch_alter_table("reviewers", schema=None) as batch_op:
        batch_op.drop_column("supervisor")
