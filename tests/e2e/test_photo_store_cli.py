"""Photos read back from the pack store through the command line (`photo get`, `cases show`,
`review next`'s cache), from a folder and from an S3 bucket (``both_stores``), and a store
that belongs to one database only: two SQLite files in one folder keep their photos apart,
another database's store is refused, a store once used is remembered."""

from __future__ import annotations

import hashlib
import os
import pty
import select
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from lizardctl.core.store import PhotoLocation
from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli, Outcome, both_stores, invoke
from tests.e2e.layouts import change_byte
from tests.e2e.test_ingest_cli import sql
from tests.stored import delete_pack


@dataclass
class Ingested:
    cli: Cli
    db_url: str
    cases: list[dict[str, Any]]
    """Every case, with ``photo`` (the bytes of its source photo, as the dump had them)."""


def _ingest(cli: Cli, root: Path, *ingest_args: str | Path) -> list[dict[str, Any]]:
    """Ingest a small generated dump; later commands name no store."""
    manifest = generate_dump(root, cameras=2, shots_per_camera=3, bad=False)
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    done = cli("ingest", manifest.dump_dir, "--workers", "0", "--settle", "0", *ingest_args)
    assert done.code == 0, done.output
    cases = cli("cases", "list", "--json").json()["items"]
    for case in cases:
        shown = cli("cases", "show", case["id"], "--json").json()
        case["photo"] = Path(shown["source_photo"]).read_bytes()
        case["sha256"] = shown["photo_sha256"]
    return cases  # type: ignore[no-any-return]


@pytest.fixture
def ingested(cli: Cli, migrated_db_url: str, tmp_path: Path) -> Ingested:
    return Ingested(cli, migrated_db_url, _ingest(cli, tmp_path / "dump"))


def _write(db_url: str, statement: str) -> None:
    """Change the database behind the tool's back (committed; asyncpg autocommits)."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        sql(db_url, statement)
        return
    with closing(sqlite3.connect(str(url.database), timeout=30)) as connection:
        connection.execute(statement)
        connection.commit()


def _reviewer_for(cli: Cli, case: dict[str, Any]) -> None:
    """Reviewer ann, at the level of ``case``: she is leased a case of that level."""
    assert cli("reviewer", "add", "ann", "--skill", str(case["level"])).code == 0


def _lizardctl(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """The installed command as a shell runs it: its own process, real stdout."""
    command = [sys.executable, "-m", "lizardctl", *map(str, args)]
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(command, stderr=subprocess.PIPE, timeout=120, check=False, **kwargs)


def _one_error(outcome: Outcome, code: int, *words: str) -> None:
    assert outcome.code == code, outcome.output
    assert outcome.stdout == ""
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), outcome.stderr
    for word in words:
        assert word in lines[0], lines[0]


@both_stores
def test_photo_get_by_case_id_and_sha256_and_their_prefixes(
    ingested: Ingested, tmp_path: Path
) -> None:
    cli = ingested.cli
    for case in ingested.cases[:3]:
        for ref in (case["id"], case["id"][:8], case["sha256"], case["sha256"][:10]):
            out = tmp_path / "got.jpg"
            got = cli("photo", "get", ref, "-o", out, "--json")
            assert got.code == 0, got.output
            assert out.read_bytes() == case["photo"]
            assert got.json()["sha256"] == case["sha256"]
            assert got.json()["size"] == len(case["photo"])
            named_by_case = ref in (case["id"], case["id"][:8])
            assert got.json()["case_id"] == (case["id"] if named_by_case else None)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_photo_get_refuses_what_names_no_photo_or_several(
    ingested: Ingested, tmp_path: Path
) -> None:
    cli = ingested.cli
    case = ingested.cases[0]
    _one_error(cli("photo", "get", "0000" * 16), 2, "no case id and no photo sha256")
    _one_error(cli("photo", "get", "abc"), 2, "at least 4 hex digits")
    _one_error(cli("photo", "get", "../../etc/passwd"), 2, "not a case id nor a sha256")
    # Two photos whose sha256 start alike, and a photo whose sha256 starts as a case id.
    twin = case["sha256"][:6] + "0" * 58
    other = ingested.cases[1]["id"].replace("-", "")[:12] + "0" * 52
    for digest in (twin, other):
        _write(
            ingested.db_url,
            "INSERT INTO photos (sha256, size, format, width, height, created_at) "
            f"VALUES ('{digest}', 1, 'JPEG', 1, 1, '2026-12-01 00:00:00')",
        )
    _one_error(cli("photo", "get", case["sha256"][:6]), 2, "ambiguous", "2 photo sha256(s)")
    _one_error(
        cli("photo", "get", ingested.cases[1]["id"][:8]),
        2,
        "ambiguous",
        "1 case id(s) and 1 photo sha256(s)",
    )
    assert cli("photo", "get", case["sha256"][:7], "-o", tmp_path / "one.jpg").code == 0
    # A row whose photo the store never got is not a photo to hand out.
    _one_error(cli("photo", "get", twin, "-o", tmp_path / "gone.jpg"), 3, "missing from the store")
    assert not (tmp_path / "gone.jpg").exists()


def test_photo_get_to_a_pipe_and_never_to_a_terminal(ingested: Ingested, tmp_path: Path) -> None:
    case = ingested.cases[0]
    env = {**os.environ, "LIZARD_DB_URL": ingested.db_url}
    piped = _lizardctl("photo", "get", case["id"][:8], env=env, cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == case["photo"] and piped.stderr == b""

    main, secondary = pty.openpty()
    try:
        refused = _lizardctl("photo", "get", case["id"], env=env, cwd=tmp_path, stdout=secondary)
        assert refused.returncode == 2
        assert refused.stderr.decode().startswith("Error: stdout is a terminal")
        assert len(refused.stderr.splitlines()) == 1
        assert select.select([main], [], [], 0)[0] == []  # not one byte reached the terminal
    finally:
        os.close(main)
        os.close(secondary)


@both_stores
def test_damaged_or_missing_pack_is_one_line_and_exit_3(ingested: Ingested) -> None:
    cli = ingested.cli
    case = ingested.cases[0]
    shown = cli("cases", "show", case["id"], "--json").json()
    assert shown["photo_path"] is None  # packed: no file of its own
    store, pack, offset = shown["photo_store"], shown["photo_pack"], shown["photo_offset"]
    assert shown["photo_size"] == len(case["photo"])
    text = cli("cases", "show", case["id"])
    assert f"{store}/packs/{pack} at offset {offset}" in text.stdout
    assert f"lizardctl photo get {case['id']}" in text.stdout

    location = PhotoLocation(case["sha256"], len(case["photo"]), pack, offset)
    change_byte(store, location, 10)  # inside the record's header: the digest
    _one_error(cli("photo", "get", case["id"], "-o", "x.jpg"), 3, "is damaged", case["sha256"])
    assert not Path("x.jpg").exists()
    delete_pack(store, pack)
    _one_error(cli("photo", "get", case["id"], "-o", "x.jpg"), 3, "missing from the store")


@both_stores
def test_review_next_hands_out_a_cached_copy_dropped_on_the_vote(
    ingested: Ingested, tmp_path: Path
) -> None:
    cli = ingested.cli
    _reviewer_for(cli, ingested.cases[0])
    lease = cli("review", "next", "-r", "ann", "--json").json()
    copy = Path(lease["case"]["photo_path"])
    assert copy.is_relative_to(tmp_path / "xdg-cache" / "lizardctl" / "review")
    by_id = {case["id"]: case for case in ingested.cases}
    assert copy.read_bytes() == by_id[lease["case"]["id"]]["photo"]
    assert copy.suffix == ".jpg"
    again = cli("review", "next", "-r", "ann")
    assert again.code == 0 and str(copy) in again.stdout.replace("\n", "")
    vote = cli("review", "vote", "-r", "ann", "--verdict", "violation")
    assert vote.code == 0, vote.output
    assert not copy.exists()


# -- a store belongs to one database --------------------------------------------------


def test_two_sqlite_files_in_one_folder_keep_their_photos_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproduction of issue 13: two databases side by side, default stores, and a
    prune for one of them. Each gets a store named after its file; the prune of one never
    touches the other's photos."""
    folder = tmp_path / "night"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("LIZARD_DB_URL", "LIZARD_STORE"):
        monkeypatch.delenv(name, raising=False)

    def cli_of(db: str) -> Cli:
        return lambda *args, **_: invoke(["--db", db, *map(str, args)])

    a, b = cli_of("a.db"), cli_of("b.db")
    cases_a = _ingest(a, tmp_path / "dump-a")
    cases_b = _ingest(b, tmp_path / "dump-b")
    assert sorted(p.name for p in folder.iterdir()) == ["a.db", "a.photos", "b.db", "b.photos"]
    packs_b = sorted((folder / "b.photos" / "packs").iterdir())
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in packs_b}

    pruned = a("verify", "--prune", "--min-age", "0")
    assert pruned.code in (0, 1), pruned.output
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in packs_b} == before
    for case in cases_b:
        got = b("photo", "get", case["id"], "-o", tmp_path / "b.jpg")
        assert got.code == 0, got.output
        assert (tmp_path / "b.jpg").read_bytes() == case["photo"]
    assert a("photo", "get", cases_a[0]["id"], "-o", tmp_path / "a.jpg").code == 0


def test_another_databases_store_is_refused_by_every_photo_command(
    ingested: Ingested, tmp_path: Path
) -> None:
    cli = ingested.cli
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    other = lambda *args: invoke(["--db", str(theirs / "other.db"), *map(str, args)])  # noqa: E731
    _ingest(other, theirs / "dump")
    foreign = theirs / "other.photos"
    case = ingested.cases[0]["id"]
    _reviewer_for(cli, ingested.cases[0])
    dump = generate_dump(tmp_path / "more", cameras=1, shots_per_camera=1, bad=False).dump_dir
    for command in (
        ("ingest", dump, "--workers", "0", "--settle", "0"),
        ("verify",),
        ("photo", "get", case, "-o", tmp_path / "x.jpg"),
        ("review", "next", "-r", "ann"),
        ("cases", "show", case),
    ):
        _one_error(
            cli(*command, "--store", foreign), 2, "belongs to another database", str(foreign)
        )
    assert not (tmp_path / "x.jpg").exists()


def test_the_database_remembers_its_store(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store named once, at ingest, is found by later commands run from another folder
    without --store; none of them makes a default store there."""
    custom = tmp_path / "custom-store"
    cases = _ingest(cli, tmp_path / "dump", "--store", custom)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    case = cases[0]
    shown = cli("cases", "show", case["id"], "--json").json()
    assert shown["photo_store"] == str(custom.resolve())
    got = cli("photo", "get", case["id"], "-o", "x.jpg")
    assert got.code == 0, got.output
    assert (elsewhere / "x.jpg").read_bytes() == case["photo"]
    _reviewer_for(cli, case)
    lease = cli("review", "next", "-r", "ann", "--json")
    assert lease.code == 0 and lease.json()["case"] is not None, lease.output
    assert sorted(p.name for p in elsewhere.iterdir()) == ["x.jpg"]

    # The same store under another path (a reviewer's mount): read there for one command,
    # not remembered there; an ingest that names it moves the remembered location.
    mounted = tmp_path / "mounted"
    shutil.copytree(custom, mounted)
    got = cli("photo", "get", case["id"], "-o", "y.jpg", "--store", mounted)
    assert got.code == 0 and (elsewhere / "y.jpg").read_bytes() == case["photo"], got.output
    assert cli("cases", "show", case["id"], "--json").json()["photo_store"] == str(custom.resolve())
    empty = tmp_path / "empty-dump"
    empty.mkdir()
    assert cli("ingest", empty, "--settle", "0", "--store", mounted).code == 0
    assert cli("cases", "show", case["id"], "--json").json()["photo_store"] == str(mounted)
