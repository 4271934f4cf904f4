"""The tool's own errors: each carries the exit code the command boundary turns it into.

Core code raises these; only ``lizardctl.commands._runtime`` prints them, once, as one line.
"""

from __future__ import annotations


class LizardError(Exception):
    """Base of every expected failure; ``exit_code`` tells the shell what kind it was.

    ``details`` are extra lines (one per bad CSV row, say) printed under the message.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details: list[str] = details or []


class UsageError(LizardError):
    """The user asked for something impossible: bad value, missing file, unknown id."""

    exit_code = 2


class NotFoundError(UsageError):
    """A thing named on the command line does not exist."""


class EnvironmentFailure(LizardError):
    """The environment failed us: database unreachable or outdated, store not writable."""

    exit_code = 3


class InternalError(LizardError):
    """A bug: something the code should have prevented. Its message is safe to print."""

    exit_code = 70
