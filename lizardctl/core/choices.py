"""The choices and limits command-line options offer, shared with the services.

Typer reads an option's type, default and bounds when the command is declared, so these
live here, free of heavy imports: ``lizardctl --version`` and ``--help`` must not pay for
SQLAlchemy, pydantic or PIL. The services import them from here too.
"""

from __future__ import annotations

from enum import StrEnum


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class FinesFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSONL = "jsonl"


MAX_VOTES_PER_LEVEL = 100
MAX_LEASE_MINUTES = 7 * 24 * 60
DEFAULT_MIN_AGE_S = 3600.0
"""``verify``: temporary and unused store files younger than this are left alone."""
DEFAULT_LIVE_BELOW = 0.5
"""``store reclaim``: packs less live than this are rewritten. Copying a live half frees the
other, so a rewrite frees at least the bytes it copies; restic's ``--max-unused`` default,
5% of the whole repository, would rewrite far more often for little."""
DEFAULT_SETTLE_S = 60.0
"""``ingest --settle``: files younger than this may still be being written."""
DEFAULT_BATCH_SIZE = 256
"""``ingest --batch-size``: shots per transaction."""
DEFAULT_CLAIM_LEASE = 300.0
"""``ingest``: seconds a worker may hold a claim before others take the part over: far
above a batch."""
DEFAULT_MAX_PHOTO_BYTES = 50_000_000
"""``ingest``: larger photos are rejected unread; a camera frame is a few MB at most."""
DEFAULT_MAX_METADATA_BYTES = 1_000_000
"""``ingest``: larger metadata files are rejected unread; real ones are under 1 KB."""

# Upper bounds of numeric options. A value past them is a typo or an attack, and unchecked
# it overflows a database integer, a C int or a timedelta deep inside a run (exit 70).
MAX_COUNT = 2**31 - 1
"""``--limit``, ``--version``: the largest INTEGER on PostgreSQL, so any column holds it."""
MAX_WORKERS = 256
"""``ingest --workers``: processes; far past any machine's cores."""
MAX_BATCH_SIZE = 100_000
"""``ingest --batch-size``: shots per transaction."""
MAX_SHARDS = 100_000
"""``ingest --shard K/N``: N at most this."""
MAX_SETTLE_S = 7 * 86400.0
"""``ingest --settle``: a file untouched for a week is not being written any more."""
MAX_CLAIM_LEASE_S = 86400.0
"""``ingest --claim-lease``: a dead worker's parts wait at most a day."""
MAX_MIN_AGE_S = 10 * 365 * 86400.0
"""``verify --min-age``: ten years, older than any store."""


class TableFormat(StrEnum):
    """How a listing prints: a table for people, TSV for grep/awk, or JSON."""

    TABLE = "table"
    TSV = "tsv"
    JSON = "json"
