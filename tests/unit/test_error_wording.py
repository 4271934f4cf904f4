"""Core errors carry facts and name no option; the command line words them in its terms."""

from __future__ import annotations

import uuid

import pytest

from lizardctl.commands._runtime import in_cli_terms
from lizardctl.core.errors import (
    BadPlate,
    DatabaseMissing,
    EmptyDatabaseUrl,
    LizardError,
    MetricsFileUnusable,
    NoLease,
    NoSuchRun,
    NotASupervisor,
    NothingToChange,
    PruneRunning,
    StatementRefused,
    StoreMissing,
    UpgradeNeeded,
)

RUN = uuid.UUID(int=7)
CASES: list[tuple[LizardError, str]] = [
    (
        DatabaseMissing("/srv/night.db"),
        "database file /srv/night.db does not exist: create it with `lizardctl db upgrade` (or "
        "any command that writes, such as ingest), or point --db at an existing one",
    ),
    (
        StatementRefused("DataError, SQLSTATE 22P02"),
        "internal error: the database refused a statement (DataError, SQLSTATE 22P02); run with "
        "--verbose for the traceback (statement parameters are never shown)",
    ),
    (
        NoLease("ann", "ann holds no case"),
        "ann holds no case: run `lizardctl review next --reviewer ann`",
    ),
    (NotASupervisor("ann"), "ann is not a supervisor: `lizardctl reviewer set ann --supervisor`"),
    (BadPlate("nonsense", "not a canonical plate"), "--plate 'nonsense': not a canonical plate"),
    (EmptyDatabaseUrl(), "--db is empty: give a database URL or a SQLite file path"),
    (NoSuchRun(RUN), f"no ingest run {RUN} (a --dry-run records none)"),
    (
        StoreMissing("/srv/photos"),
        "photo store /srv/photos does not exist: give --store or LIZARD_STORE",
    ),
    (
        UpgradeNeeded("database sqlite:///night.db is outdated"),
        "database sqlite:///night.db is outdated: run `lizardctl db upgrade`",
    ),
    (
        MetricsFileUnusable("/srv/m.prom", "a folder, not a file"),
        "--metrics-file /srv/m.prom: a folder, not a file",
    ),
    (
        PruneRunning("db1:42, started 2026-11-25 03:00:00 UTC"),
        "a prune (verify --prune, store reclaim or store repack) is deleting photos (db1:42, "
        "started 2026-11-25 03:00:00 UTC): ingest could re-use a photo it deletes, so it does "
        "not start; run it again when the prune is done",
    ),
]


@pytest.mark.parametrize(("error", "worded"), CASES)
def test_the_command_line_names_the_options(error: LizardError, worded: str) -> None:
    assert "--" not in str(error)
    assert "lizardctl " not in str(error)
    assert in_cli_terms(error) == worded


def test_an_error_without_cli_wording_keeps_its_message() -> None:
    error = NothingToChange("the reviewer", ("skill", "active state"))
    assert (
        in_cli_terms(error)
        == str(error)
        == "nothing to change: give the reviewer a new skill, active state"
    )
    assert error.fields == ("skill", "active state")
