"""Hostile option values are usage errors: exit 2 and one ``Error:`` line, never exit 70.

Each value here once reached the database driver, C code or a timedelta and ended as
``internal error`` (exit 70), or was accepted although no run could use it (``--settle
1e308``). The commands run against a real, migrated database holding an owner, so a value
that slipped past the option parser would get as far as the query again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lizardctl.core.schema import builtin_schema_files
from tests.e2e.conftest import Cli, Outcome, invoke

BIG = "99999999999999999999"
PLATE = "1ABC2377"
SINCE_COMMANDS = [
    ["report"],
    ["cases", "list"],
    ["export"],
    ["fines"],
    ["report", "reviews"],
    ["report", "fines"],
]
OVERFLOWING_SINCE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
HOSTILE_FLOATS = ["1e308", "inf", "-inf", "nan", "1e400"]

CASE = "3f2a0c1e-8d5b-4c1e-9f7a-2b6d4e8c0a11"
NOT_UTF8 = "e\udcffve"
"""A name whose bytes are not UTF-8, as Python hands it over from the command line."""
DECIDE = ["cases", "decide", CASE, "--verdict", "violation"]
REPLAY = [
    "schema",
    "add",
    "camerus1",
    "--file",
    str(builtin_schema_files()["camerus1"]),
    "--replay",
]
LIFECYCLE_CASES: list[list[str]] = [
    ["cases", "decide", "not-a-uuid", "--verdict", "violation", "--by", "eve"],
    ["cases", "decide", "", "--verdict", "violation", "--by", "eve"],
    ["cases", "decide", CASE, "--verdict", "maybe", "--by", "eve"],
    [*DECIDE, "--by", NOT_UTF8],
    [*DECIDE, "--by", "e\x1b[2Jve"],
    [*DECIDE, "--by", "e" * 100_000],
    [*DECIDE, "--by", "eve", "--note", "paid\x1b[2J"],
    [*DECIDE, "--by", "eve", "--note", "paid\u202e"],
    [*DECIDE, "--by", "eve", "--note", "n" * 100_000],
    [*DECIDE, "--by", "eve", "--note", "paid \udcff"],
    ["reviewer", "add", "bob", "--skill", BIG, "--supervisor"],
    ["reviewer", "add", NOT_UTF8, "--skill", "1", "--supervisor"],
    ["reviewer", "add", "b\x1bob", "--skill", "1", "--supervisor"],
    ["reviewer", "set", NOT_UTF8, "--supervisor"],
    ["reviewer", "set", "e" * 100_000, "--no-supervisor"],
    ["reviewer", "set", "eve", "--skill", BIG, "--supervisor"],
    ["reviewer", "set", "eve", "--skill", "-1"],
    ["review", "next", "--reviewer", NOT_UTF8],
    ["review", "vote", "--reviewer", NOT_UTF8, "--verdict", "violation"],
    *([*REPLAY, "--since", value] for value in [*OVERFLOWING_SINCE, "garbage"]),
    *([*REPLAY, "--limit", value] for value in [BIG, "0", "-1", "1e3"]),
]
"""The case-lifecycle commands: ids that are not UUIDs, names that no reviewer can have
(the driver refused one that is not UTF-8: exit 70), control characters, huge values."""

CASES: list[list[str]] = [
    ["rejects", "--limit", BIG],
    ["cases", "list", "--limit", BIG],
    ["owner", "list", "--limit", BIG],
    ["owner", "show", PLATE, "--limit", BIG],
    ["verify", "--limit", BIG],
    ["schema", "show", "camerus1", "--version", BIG],
    ["ingest", "{dump}", "--workers", BIG],
    ["ingest", "{dump}", "--batch-size", BIG],
    ["reviewer", "add", "bob", "--skill", BIG],
    ["review", "config", "--votes", BIG],
    ["review", "config", "--lease-minutes", BIG],
    *(["ingest", "{dump}", "--claim-lease", value] for value in HOSTILE_FLOATS),
    *(["ingest", "{dump}", "--settle", value] for value in HOSTILE_FLOATS),
    *(["verify", "--prune", "--min-age", value] for value in HOSTILE_FLOATS),
    *(["store", "reclaim", "--live-below", value] for value in [*HOSTILE_FLOATS, "1.5", "-0.1"]),
    *(["camera", "add", "--type", "camerus1", "--lat", v, "--lon", "0"] for v in HOSTILE_FLOATS),
    *([*command, "--since", value] for command in SINCE_COMMANDS for value in OVERFLOWING_SINCE),
    ["ingest", "{dump}", "--shard", f"{BIG}/{BIG}9"],
    ["ingest", "{dump}", "--shard", "1/0"],
    ["ingest", "{dump}", "--shard", "\u00b2/\u00b3"],
    ["db", "upgrade", ""],
    ["db", "downgrade", "@"],
    ["db", "downgrade", "heads@"],
    *LIFECYCLE_CASES,
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A migrated SQLite database with one owner, an empty dump folder and a store."""
    root = tmp_path_factory.mktemp("bad-options")
    (root / "dump").mkdir()
    owners = root / "owners.csv"
    owners.write_text(f"plate,name,phone,email,telegram\n{PLATE},Ann,+15550100,,\n")
    env = {
        "LIZARD_DB_URL": f"sqlite+aiosqlite:///{root / 'lizard.db'}",
        "LIZARD_STORE": str(root / "photos"),
    }
    assert invoke(["db", "upgrade"], env=env).code == 0
    assert invoke(["owner", "import", str(owners)], env=env).code == 0
    yield {"dump": str(root / "dump"), **env}


def _is_usage_error(out: Outcome) -> bool:
    return out.code == 2 and out.stderr.startswith("Error: ") and out.stderr.count("\n") == 1


@pytest.mark.parametrize("args", CASES, ids=lambda args: " ".join(args)[:80] or "''")
def test_hostile_value_is_exit_2_with_one_line(args: list[str], workspace: dict[str, str]) -> None:
    env = {k: v for k, v in workspace.items() if k != "dump"}
    out = invoke([a.format(dump=workspace["dump"]) for a in args], env=env)
    assert _is_usage_error(out), out.output
    assert "internal error" not in out.output


def test_owner_show_reaches_the_database_with_the_largest_limit(
    workspace: dict[str, str],
) -> None:
    """The bound itself fits the database: the largest accepted value works."""
    env = {k: v for k, v in workspace.items() if k != "dump"}
    out = invoke(["--json", "owner", "show", PLATE, "--limit", str(2**31 - 1)], env=env)
    assert out.code == 0, out.output
    assert json.loads(out.stdout)["plate"] == PLATE


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://lizard:s3cret@db.example:notaport/lizard",
        "postgresql+asyncpg://lizard:s3cret@db.example:99999999/lizard",
        "postgresql+asyncpg://lizard:s3cret@db.example:0/lizard",
        "postgresql+asyncpg://lizard:s3cret@[::1/lizard",
        "postgresql+asyncpg://lizard:31415926535/lizard",
        "sqlite+aiosqlite:///lizard%00.db",
        "postgresql+asyncpg://lizard:s3cret@db.example/lizard?search_path=a%00b",
    ],
)
def test_unparseable_database_url_is_exit_2_without_the_password(url: str) -> None:
    out = invoke(["--db", url, "db", "current"])
    assert _is_usage_error(out), out.output
    assert "not a database URL" in out.stderr
    assert "s3cret" not in out.output
    assert "31415926535" not in out.output


def test_url_port_problem_is_named() -> None:
    out = invoke(["--db", "postgresql+asyncpg://u:pw@h:notaport/db", "camera", "list"])
    assert "port" in out.stderr


def _deep_schema(levels: int) -> str:
    nested = '{"a": {"type": "object", "fields": ' * levels + '{"b": "string"}' + "}}" * levels
    return '{"layout": ' + nested + ', "mapping": {}}'


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (_deep_schema(20_000), "line 1, column"),  # 740 KB: under the 1 MB file limit
        (_deep_schema(40), "layout.a.fields.a.fields"),
        ('{"layout": {"x": {"type": "string", "min_length": 1e30}}}', "layout.x.min_length"),
        (
            '{"layout": {"x": {"type": "string", "max_length": 1000000000000000000000000000000}}}',
            "layout.x.max_length",
        ),
        ('{"layout": {"x": {"type": "float", "le": 1' + "0" * 400 + "}}}", "layout.x.le"),
    ],
    ids=["nested-20k", "nested-40-objects", "min_length-1e30", "max_length-10e30", "le-1e400"],
)
def test_hostile_schema_file_is_exit_2_naming_the_place(
    content: str, where: str, tmp_path: Path, cli: Cli
) -> None:
    schema = tmp_path / "camerus9.json"
    schema.write_text(content)
    out = cli("schema", "add", "camerus9", "--file", schema)
    assert out.code == 2, out.output
    assert out.stderr.startswith("Error: ")
    assert where in out.stderr
    assert "internal error" not in out.output
    assert cli("schema", "versions", "camerus9").code == 2  # nothing registered


@pytest.mark.parametrize(
    "args",
    [
        ["rejects", "--limit", BIG],
        ["cases", "list", "--since", OVERFLOWING_SINCE[0]],
        ["fines", "--since", OVERFLOWING_SINCE[1]],
        ["ingest", ".", "--claim-lease", "1e308"],
        [*DECIDE, "--by", NOT_UTF8],
        ["reviewer", "set", NOT_UTF8, "--supervisor"],
    ],
    ids=" ".join,
)
def test_hostile_value_is_exit_2_on_both_engines(args: list[str], cli: Cli) -> None:
    out = cli(*args)
    assert _is_usage_error(out), out.output


def test_extreme_since_that_fits_is_accepted(cli: Cli) -> None:
    """Year 1 and year 9999 in UTC are valid bounds on both engines, not errors."""
    assert cli("cases", "list", "--since", "0001-01-01T00:00:00-14:00").code == 0
    assert cli("fines", "--since", "9999-12-31T23:59:59+00:00").code == 0


@pytest.mark.parametrize(
    "args",
    [
        [*DECIDE, "--by", "e" * 100_000],
        ["reviewer", "set", "e" * 100_000, "--supervisor"],
        ["schema", "add", "c" * 100_000, "--file", str(builtin_schema_files()["camerus1"])],
    ],
    ids=["decide --by", "reviewer set", "schema add"],
)
def test_a_huge_value_is_quoted_back_cut(args: list[str], workspace: dict[str, str]) -> None:
    """One line, and a short one: an error quotes at most 80 characters of the value."""
    env = {k: v for k, v in workspace.items() if k != "dump"}
    out = invoke(args, env=env)
    assert _is_usage_error(out), out.output[:300]
    assert "... (100,000 characters)" in out.stderr
    assert len(out.stderr) < 300
