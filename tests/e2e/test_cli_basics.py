"""The command line's contract: exit codes, one-line errors, masked URLs, help everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from lizardctl.commands.app import app
from tests.e2e.conftest import Cli, invoke


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for info in getattr(group, "registered_commands", []):
        name = info.name or info.callback.__name__.rstrip("_").replace("_", "-")
        found.append((*prefix, name))
    for info in getattr(group, "registered_groups", []):
        found.extend(_commands(info.typer_instance, (*prefix, info.name)))
    return found


COMMANDS = _commands(app)


def test_every_group_is_found() -> None:
    assert {c[0] for c in COMMANDS} >= {"db", "camera", "schema"}


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command: tuple[str, ...]) -> None:
    out = invoke([*command, "--help"])
    assert out.code == 0, out.output
    assert "Example" in out.stdout, f"{' '.join(command)} --help has no example"


def test_unknown_option_is_one_line_exit_2() -> None:
    out = invoke(["camera", "list", "--bogus"])
    assert out.code == 2
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("Error: No such option: --bogus")


def test_bad_option_value_is_one_line_exit_2() -> None:
    out = invoke(["camera", "add", "--type", "camerus1", "--lat", "north", "--lon", "1"])
    assert out.code == 2
    assert out.stderr.count("\n") == 1
    assert "--lat" in out.stderr


def test_unreachable_postgres_is_exit_3(tmp_path: Path) -> None:
    out = invoke(["--db", "postgresql+asyncpg://lizard:s3cret@127.0.0.1:1/none", "camera", "list"])
    assert out.code == 3
    assert out.stderr.count("\n") == 1
    assert "s3cret" not in out.output
    assert "unreachable" in out.stderr or "unusable" in out.stderr


def test_sqlite_in_missing_directory_is_exit_3(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/lizard.db"
    out = invoke(["--db", url, "camera", "list"])
    assert out.code == 3
    assert out.stderr.count("\n") == 1
    assert "does not exist" in out.stderr


def test_unsupported_url_is_exit_2() -> None:
    out = invoke(["--db", "mysql://root@localhost/test", "camera", "list"])
    assert out.code == 2
    assert "unsupported database" in out.stderr


def test_db_current_masks_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = invoke(["--db", "postgresql+asyncpg://lizard:s3cret@127.0.0.1:1/none", "db", "current"])
    assert out.code == 3
    assert "s3cret" not in out.output
    assert "***" in out.stderr


def test_default_database_is_created_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIZARD_DB_URL", raising=False)
    out = invoke(["review", "config", "--votes", "3"])
    assert out.code == 0, out.output
    assert (tmp_path / "lizard.db").is_file()
    assert f"created database sqlite+aiosqlite:///{tmp_path / 'lizard.db'}" in out.stderr
    assert invoke(["camera", "list", "--json"]).json() == []
    current = invoke(["db", "current", "--json"])
    assert current.json()["state"] == "up to date"


def test_env_var_selects_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    assert invoke(["db", "upgrade"], env={"LIZARD_DB_URL": url}).code == 0
    out = invoke(["db", "current", "--json"], env={"LIZARD_DB_URL": url})
    assert out.json()["url"] == url


def test_postgres_is_never_migrated_implicitly(pg_url: str) -> None:
    out = invoke(["--db", pg_url, "camera", "list"])
    assert out.code == 3
    assert "lizardctl db upgrade" in out.stderr
    assert invoke(["--db", pg_url, "db", "upgrade"]).code == 0
    assert invoke(["--db", pg_url, "camera", "list", "--json"]).json() == []


def test_db_current_and_history(cli: Cli) -> None:
    current = cli("db", "current", "--json").json()
    assert current["current"] == current["head"]
    history = cli("db", "history", "--json").json()
    assert history[0]["is_head"] is True
    assert cli("db", "history").code == 0


def test_db_downgrade_then_commands_refuse_or_migrate(cli: Cli, db_url: str) -> None:
    assert cli("db", "downgrade", "base").code == 0
    assert cli("db", "current", "--json").json()["current"] == []
    out = cli("camera", "list", "--json")
    if db_url.startswith("sqlite"):
        assert out.code == 0
    else:
        assert out.code == 3
        assert "not migrated" in out.stderr


def test_quiet_silences_results(cli: Cli, tmp_path: Path) -> None:
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("id,type,latitude,longitude\n")
    out = cli("--quiet", "camera", "import", csv_file)
    assert out.code == 0
    assert out.stdout == ""
