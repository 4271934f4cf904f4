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


class IngestRunning(EnvironmentFailure):
    """A prune found a live ingest run: it refuses to delete anything."""


# Errors whose facts the command line words in its own terms (``commands._runtime.in_cli_terms``):
# their own message says what is wrong without naming an option, as a library caller sees it.


class NothingToChange(UsageError):
    """An update was asked for with nothing to change; ``fields`` are what could be."""

    def __init__(self, subject: str, fields: tuple[str, ...]) -> None:
        self.subject = subject
        self.fields = fields
        super().__init__(f"nothing to change: give {subject} a new {', '.join(fields)}")


class NotASupervisor(UsageError):
    """Only a supervisor decides a case; ``name`` is not one."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"{name} is not a supervisor")


class NoLease(UsageError):
    """A reviewer voted without holding the case: ``why`` says what happened to it."""

    def __init__(self, reviewer: str, why: str) -> None:
        self.reviewer = reviewer
        self.why = why
        super().__init__(f"{why}: take a new case first")


class BadPlate(UsageError):
    """A plate given to filter by is not a canonical plate."""

    def __init__(self, plate: str, problem: str) -> None:
        self.plate = plate
        self.problem = problem
        super().__init__(f"plate {plate!r}: {problem}")


class NoSuchRun(NotFoundError):
    """No ingest run has this id (a dry run records none)."""

    def __init__(self, run_id: object) -> None:
        self.run_id = run_id
        super().__init__(f"no ingest run {run_id} (a dry run records none)")


class StoreMissing(UsageError):
    """The photo store a command needs is not where it was looked for."""

    def __init__(self, root: object) -> None:
        self.root = root
        super().__init__(f"photo store {root} does not exist")


class StoreMismatch(UsageError):
    """The photo store given is not the one this database uses: another database's, or
    a folder this database never used. Refused before anything is read or changed."""


class DatabaseMissing(EnvironmentFailure):
    """A command that only reads was pointed at a SQLite file that is not there."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(f"database file {path} does not exist")


class StatementRefused(InternalError):
    """The database refused a statement: named by error class and SQLSTATE, never by the
    driver's text or the statement's values, which may quote a row's personal data."""

    def __init__(self, described: str) -> None:
        self.described = described
        super().__init__(
            f"internal error: the database refused a statement ({described}); "
            "statement parameters are never shown"
        )


class EmptyDatabaseUrl(UsageError):
    """The database was given as an empty string."""

    def __init__(self) -> None:
        super().__init__("the database URL is empty: give a URL or a SQLite file path")


class UpgradeNeeded(EnvironmentFailure):
    """The database's schema is behind this lizardctl: never migrated, outdated, or missing
    a row a migration writes; ``what`` says which."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what}: the database schema needs an upgrade")


class MetricsFileUnusable(UsageError):
    """The metrics file cannot be written where it was asked for: refused before the run."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"metrics file {path}: {problem}")


class PruneRunning(EnvironmentFailure):
    """An ingest found a live prune (``prunes`` names them): it refuses to start, since it
    could re-use a photo the prune deletes."""

    def __init__(self, prunes: str) -> None:
        self.prunes = prunes
        super().__init__(
            f"a prune is deleting unused photos ({prunes}): ingest could re-use a photo it "
            "deletes, so it does not start; run it again when the prune is done"
        )
