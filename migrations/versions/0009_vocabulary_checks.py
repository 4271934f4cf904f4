"""The database refuses words outside lizardctl's vocabularies (``lizardctl.core.vocabulary``).

CHECK constraints on ``cases.status``, ``case_transitions.from_status``/``to_status``,
``ingest_runs.status`` and ``rejections.reason``; ``assignments.verdict`` has had one since
0002. The words are written out here, not imported: a migration describes the schema as it
was at this revision, whatever the enums become later (a new word needs a new migration).

A database holding a row outside them stops the upgrade with the database's own error
naming the constraint; find such rows with e.g.
``SELECT status, count(*) FROM cases GROUP BY status``.

On SQLite a constraint is added by copying the table (batch mode); ``lizardctl.core.db.migrate``
runs migrations with foreign keys off, so dropping the old ``cases`` does not cascade to the
reviews' assignments and transitions, and checks every foreign key before committing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASE_STATUSES = ("open", "escalated", "confirmed", "dismissed")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
REASONS = (
    "orphan",
    "ambiguous-pair",
    "unreadable",
    "too-large",
    "bad-metadata",
    "unknown-type",
    "ambiguous-type",
    "invalid",
    "future-timestamp",
    "unknown-camera",
    "type-mismatch",
    "unknown-violation",
    "bad-photo",
    "photo-conflict",
)

CHECKS: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "cases": [("status_known", "status", CASE_STATUSES)],
    "case_transitions": [
        ("from_status_known", "from_status", CASE_STATUSES),
        ("to_status_known", "to_status", CASE_STATUSES),
    ],
    "ingest_runs": [("status_known", "status", RUN_STATUSES)],
    "rejections": [("reason_known", "reason", REASONS)],
}
"""Table -> (constraint name, column, the words it allows)."""


def _one_of(column: str, words: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(w) for w in words)})"


def upgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, words in checks:
                batch_op.create_check_constraint(op.f(f"ck_{table}_{name}"), _one_of(column, words))


def downgrade() -> None:
    for table, checks in reversed(CHECKS.items()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _column, _words in reversed(checks):
                batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
