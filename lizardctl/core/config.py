"""Where the database and the photo store live, and how URLs are shown to people."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lizardctl.core.errors import EmptyDatabaseUrl, UsageError
from lizardctl.core.store.s3config import is_s3_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_DB_FILE = "lizard.db"
DB_URL_ENV = "LIZARD_DB_URL"
STORE_ENV = "LIZARD_STORE"
METRICS_FILE_ENV = "LIZARD_METRICS_FILE"
LOCK_TIMEOUT_ENV = "LIZARD_LOCK_TIMEOUT"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def default_db_url(cwd: Path | None = None) -> str:
    """The embedded default: ``lizard.db`` in the current directory."""
    path = (cwd or Path.cwd()) / DEFAULT_DB_FILE
    return f"sqlite+aiosqlite:///{path}"


def is_file_path(raw: str) -> bool:
    """A ``--db`` value without ``scheme://`` is a SQLite file path (``night.db``,
    ``./night.db``, ``/srv/lizard.db``), as sqlite3 and sqlite-utils take it."""
    return "://" not in raw


def _make_url(raw: str) -> URL:
    """``make_url``, but a bare file path becomes the SQLite URL of that file."""
    from sqlalchemy.engine import URL, make_url

    if is_file_path(raw):
        return URL.create("sqlite+aiosqlite", database=str(Path(raw).expanduser().absolute()))
    return make_url(raw)


def parse_db_url(raw: str) -> URL:
    """Parse and check a database URL or a bare SQLite file path; plain
    ``sqlite:``/``postgresql:`` get the async driver.

    A URL that does not parse is a usage error (exit 2). The messages never repeat the URL
    nor the port: in ``postgresql://user:secret/db`` (the ``@`` forgotten) the password is
    what lands in the port.
    """
    from sqlalchemy.exc import ArgumentError

    if not raw.strip():
        raise EmptyDatabaseUrl
    try:
        url = _make_url(raw)
    except ArgumentError as exc:
        raise UsageError(f"not a database URL: {mask_url(raw)!r}") from exc
    except ValueError as exc:  # the only int() in the parser: the port
        raise UsageError(f"not a database URL: {_PORT_PROBLEM}") from exc
    if url.port is not None and not 1 <= url.port <= 65535:
        raise UsageError(f"not a database URL: {_PORT_PROBLEM}")
    if any("\x00" in part for part in _url_parts(url)):
        raise UsageError("not a database URL: it contains a NUL byte")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        url = url.set(drivername="sqlite+aiosqlite")
    elif url.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    if url.drivername not in SUPPORTED_DRIVERS:
        raise UsageError(
            f"unsupported database {url.drivername!r}: use sqlite+aiosqlite:// or "
            "postgresql+asyncpg://"
        )
    return url


_PORT_PROBLEM = (
    "the port (after the host's ':') is not a number from 1 to 65535; the form is "
    "postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE"
)


def _url_parts(url: URL) -> list[str]:
    """Every decoded text of a URL: a NUL in any of them fails later, in C, as exit 70."""
    parts = [url.username, url.password, url.host, url.database]
    for key, values in url.query.items():
        parts.append(key)
        parts.extend((values,) if isinstance(values, str) else values)
    return [part for part in parts if part]


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    if not is_sqlite(url) or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


SECRET_QUERY_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "signature")
"""A query parameter whose name contains one of these (any case) is shown as ``***``: drivers
take ``password``, ``sslpassword``, ``access_key``, ``secret_key``, ``api_token`` and more in
the query string, and hiding a harmless one costs less than printing a secret."""
MASK = "***"


def is_secret_parameter(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_QUERY_WORDS)


def _url(url: URL | str) -> URL | None:
    if not isinstance(url, str):
        return url
    from sqlalchemy.exc import ArgumentError

    try:
        return _make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return None


def mask_url(url: URL | str) -> str:
    """Render a URL with every secret hidden, the user-info password and secret query
    parameters alike: the one renderer for logs, errors, summaries and ``db current``."""
    from urllib.parse import quote_plus

    parsed = _url(url)
    if parsed is None:
        return "<unparseable URL>"
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    pairs = [
        f"{quote_plus(key)}={MASK if is_secret_parameter(key) else quote_plus(value)}"
        for key, values in parsed.query.items()
        for value in ((values,) if isinstance(values, str) else values)
    ]
    return f"{shown}?{'&'.join(pairs)}" if pairs else shown


def url_secrets(url: URL | str) -> list[str]:
    """The secret values a URL carries, to scrub from text that did not come from
    ``mask_url`` (a driver's error message may quote them)."""
    parsed = _url(url)
    if parsed is None:
        return []
    found = [parsed.password] if parsed.password else []
    for key, values in parsed.query.items():
        if is_secret_parameter(key):
            found += [v for v in ((values,) if isinstance(values, str) else values) if v]
    return [str(secret) for secret in found]


def scrub_secrets(text: str, url: URL | str) -> str:
    """``text`` with every secret of ``url`` replaced by ``***``, longest first."""
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def default_store_dir(url: URL) -> Path | str:
    """A new database's store: ``LIZARD_STORE`` (a folder or an ``s3://`` URL), else beside
    the SQLite file and named after it (``night.db`` -> ``night.photos/``), else ``./photos``
    for a server database."""
    env = os.environ.get(STORE_ENV)
    if env:
        return env if is_s3_url(env) else Path(env)
    db_file = sqlite_path(url)
    if db_file is None:
        return Path.cwd() / "photos"
    db_file = db_file.resolve()
    return db_file.parent / f"{db_file.stem}.photos"


def legacy_store_dir(url: URL) -> Path:
    """Where a database's store was by default before stores were named after their SQLite
    file: ``photos/`` beside it."""
    db_file = sqlite_path(url)
    return (db_file.resolve().parent if db_file is not None else Path.cwd()) / "photos"
