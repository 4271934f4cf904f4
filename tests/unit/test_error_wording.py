"""Core errors carry facts and name no option; the command line words them in its terms."""

from __future__ import annotations

import uuid

import pytest

from lizardctl.commands._runtime import in_cli_terms
from lizardctl.core.errors import (
    BadPlate,
    LizardError,
    NoLease,
    NoSuchRun,
    NotASupervisor,
    NothingToChange,
    StoreMissing,
)

RUN = uuid.UUID(int=7)
CASES: list[tuple[LizardError, str]] = [
    (
        NoLease("ann", "ann holds no case"),
        "ann holds no case: run `lizardctl review next --reviewer ann`",
    ),
    (NotASupervisor("ann"), "ann is not a supervisor: `lizardctl reviewer set ann --supervisor`"),
    (BadPlate("nonsense", "not a canonical plate"), "--plate 'nonsense': not a canonical plate"),
    (NoSuchRun(RUN), f"no ingest run {RUN} (a --dry-run records none)"),
    (
        StoreMissing("/srv/photos"),
        "photo store /srv/photos does not exist: give --store or LIZARD_STORE",
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
