"""The camera-type schema registry through the command line, on SQLite and on PostgreSQL.

What an integration engineer does with a new vendor: try samples with ``schema check``,
register a schema file with ``schema add``, version it, and add cameras of the new type.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lizardctl.core.codecs import encode_binary
from tests.e2e.conftest import Cli, Outcome

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCHEMAS = FIXTURES / "schemas"
CAMERUS4_SAMPLE = FIXTURES / "samples" / "camerus4.json"
EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (SCHEMAS / "design_examples.json").read_text(encoding="utf-8")
)
BUILTINS = ["camerus1", "camerus2", "camerus3"]

SPEEDING = "de163a57-fd92-47a6-9b78-82bb0d41be71"
# camera_id, violation_id of each DESIGN.md example
EXPECTED_IDS = {
    "camerus1": ("104fc08a-efb6-427f-9193-2d54e4ed3e12", SPEEDING),
    "camerus2": ("d5cf359d-f9c3-48a1-8bb2-7a2f66f26670", SPEEDING),
    "camerus3": ("baa1b593-4635-45d4-9a29-181a7f5bb77a", "b8c548ca-b143-4e88-9c2d-fc0599ad570b"),
    "camerus4": ("7f3c1a52-9d0e-4b6a-8e21-5c4d3b2a1f00", SPEEDING),
}
NEW_YEAR = datetime(2024, 1, 1, tzinfo=UTC)


# helpers


def write_samples(folder: Path) -> list[Path]:
    """Every DESIGN.md example as ``NAME.json`` and as ``NAME.bin`` (the binary encoding)."""
    paths = []
    for name, metadata in EXAMPLES.items():
        json_path, bin_path = folder / f"{name}.json", folder / f"{name}.bin"
        json_path.write_text(json.dumps(metadata), encoding="utf-8")
        bin_path.write_bytes(encode_binary(metadata))
        paths += [json_path, bin_path]
    return paths


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def listed(cli: Cli) -> dict[str, dict[str, Any]]:
    out = cli("schema", "list", "--json")
    assert out.code == 0, out.output
    return {row["name"]: row for row in out.json()}


def checked(out: Outcome) -> dict[str, dict[str, Any]]:
    """``schema check --json`` results by file name."""
    return {Path(result["file"]).name: result for result in out.json()}


def assert_canonical(result: dict[str, Any], camera_type: str, version: int = 1) -> None:
    assert result["ok"], result
    assert (result["camera_type"], result["version"]) == (camera_type, version)
    case = result["case"]
    assert case["plate"] == "1ABC2377"
    assert (case["camera_id"], case["violation_id"]) == EXPECTED_IDS[camera_type]
    assert case["violation_value"] == "62km/h"
    assert case["skill"] == 1
    occurred_at = datetime.fromisoformat(case["occurred_at"])
    assert occurred_at == NEW_YEAR
    assert occurred_at.utcoffset() is not None


def add_camera(cli: Cli, camera_type: str, camera_id: str | None = None) -> Outcome:
    extra = ["--id", camera_id] if camera_id else []
    return cli("camera", "add", "--type", camera_type, "--lat", "1", "--lon", "1", *extra)


def error_lines(out: Outcome) -> list[str]:
    return out.stderr.rstrip("\n").splitlines()


# schema list


def test_list_after_upgrade_shows_builtins_with_camera_counts(cli: Cli) -> None:
    rows = listed(cli)
    assert rows == {
        name: {"name": name, "latest_version": 1, "versions": 1, "cameras": 0} for name in BUILTINS
    }
    assert add_camera(cli, "camerus2").code == 0
    assert add_camera(cli, "camerus2").code == 0
    counts = {name: row["cameras"] for name, row in listed(cli).items()}
    assert counts == {"camerus1": 0, "camerus2": 2, "camerus3": 0}

    table = cli("schema", "list")
    assert table.code == 0
    camerus2_line = next(line for line in table.stdout.splitlines() if "camerus2" in line)
    assert re.findall(r"\d+", camerus2_line.replace("camerus2", "")) == ["1", "1", "2"]


# schema check: the DESIGN.md examples


def test_check_detects_every_design_example_in_both_encodings(cli: Cli, tmp_path: Path) -> None:
    samples = write_samples(tmp_path)
    out = cli("schema", "check", *samples, "--json")
    assert out.code == 0, out.output
    results = checked(out)
    assert sorted(results) == sorted(p.name for p in samples)
    for file_name, result in results.items():
        assert_canonical(result, Path(file_name).stem)
        # No camera is registered yet: ingest would reject the shot, check only notes it.
        assert len(result["notes"]) == 1
        assert "is not registered" in result["notes"][0]


def test_check_prints_the_case_for_people(cli: Cli, tmp_path: Path) -> None:
    write_samples(tmp_path)
    out = cli("schema", "check", tmp_path / "camerus3.bin")
    assert out.code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == f"{tmp_path / 'camerus3.bin'}: ok (camerus3 v1)"
    assert "  plate: 1ABC2377" in lines
    assert "  skill: 1" in lines
    assert any(line.startswith("  note: camera baa1b593-") for line in lines)


@pytest.mark.parametrize("name", BUILTINS)
def test_check_against_a_named_type_and_version(cli: Cli, tmp_path: Path, name: str) -> None:
    write_samples(tmp_path)
    files = [tmp_path / f"{name}.json", tmp_path / f"{name}.bin"]
    out = cli("schema", "check", name, *files, "--version", "1", "--json")
    assert out.code == 0, out.output
    for result in checked(out).values():
        assert_canonical(result, name)

    no_such_version = cli("schema", "check", name, *files, "--version", "2")
    assert no_such_version.code == 2
    assert error_lines(no_such_version) == [f"Error: no version 2 of camera type '{name}'"]


def test_check_against_the_wrong_named_type_lists_the_field_errors(
    cli: Cli, tmp_path: Path
) -> None:
    write_samples(tmp_path)
    out = cli("schema", "check", "camerus2", tmp_path / "camerus1.json", "--json")
    assert out.code == 1
    [result] = out.json()
    assert (result["ok"], result["reason"]) == (False, "invalid")
    assert (result["camera_type"], result["version"]) == ("camerus2", 1)
    assert "transport: required" in result["errors"]
    assert any(e.startswith("transport_chars: unexpected key") for e in result["errors"])


def test_check_usage_mistakes(cli: Cli, tmp_path: Path) -> None:
    write_samples(tmp_path)
    version_without_name = cli("schema", "check", tmp_path / "camerus1.json", "--version", "1")
    assert version_without_name.code == 2
    assert "--version needs a type NAME" in version_without_name.stderr
    name_without_files = cli("schema", "check", "camerus2")
    assert name_without_files.code == 2
    assert "give FILEs after it" in name_without_files.stderr
    unknown_type = cli("schema", "check", "nosuch", tmp_path / "camerus1.json")
    assert unknown_type.code == 2
    assert error_lines(unknown_type) == ["Error: no camera type 'nosuch'"]


# schema check: samples that fail


def test_check_exits_1_when_any_sample_fails(cli: Cli, tmp_path: Path) -> None:
    write_samples(tmp_path)
    bad = dict(EXAMPLES["camerus2"])
    bad["datetime"] = {**bad["datetime"], "month": 13}
    bad_file = write_json(tmp_path / "month13.json", bad)

    out = cli("schema", "check", tmp_path / "camerus2.json", bad_file, "--json")
    assert out.code == 1
    results = checked(out)
    assert results["camerus2.json"]["ok"]
    failed = results["month13.json"]
    assert (failed["ok"], failed["reason"], failed["case"]) == (False, "invalid", None)
    assert [e for e in failed["errors"] if e.startswith("datetime.month: ")], failed["errors"]

    text = cli("schema", "check", "camerus2", bad_file)
    assert text.code == 1
    assert text.stdout.splitlines()[0] == f"{bad_file}: invalid (camerus2 v1)"
    assert "  datetime.month: must be <= 12, got 13" in text.stdout.splitlines()

    assert cli("schema", "check", tmp_path / "camerus2.json").code == 0


def test_check_reports_a_broken_binary_file_with_its_byte_offset(cli: Cli, tmp_path: Path) -> None:
    good = encode_binary(EXAMPLES["camerus1"])
    broken = tmp_path / "truncated.bin"
    broken.write_bytes(good[: len(good) // 2])
    out = cli("schema", "check", broken, "--json")
    assert out.code == 1
    [result] = out.json()
    assert (result["ok"], result["reason"]) == (False, "bad-metadata")
    assert re.search(r"at byte \d+", result["errors"][0]), result["errors"]


def test_check_reports_an_unknown_shape(cli: Cli, tmp_path: Path) -> None:
    sample = write_json(tmp_path / "odd.json", {"plate": "1ABC2377", "when": 1704067200})
    out = cli("schema", "check", sample, "--json")
    assert out.code == 1
    [result] = out.json()
    assert (result["ok"], result["reason"]) == (False, "unknown-type")
    assert "plate, when" in result["errors"][0]


def test_check_cross_checks_the_camera_registry(cli: Cli, tmp_path: Path) -> None:
    write_samples(tmp_path)
    camerus2_camera, _ = EXPECTED_IDS["camerus2"]
    camerus3_camera, _ = EXPECTED_IDS["camerus3"]
    assert add_camera(cli, "camerus1", camerus2_camera).code == 0
    assert add_camera(cli, "camerus3", camerus3_camera).code == 0

    files = [tmp_path / "camerus2.json", tmp_path / "camerus3.json", tmp_path / "camerus1.json"]
    out = cli("schema", "check", *files, "--json")
    assert out.code == 1
    results = checked(out)
    mismatch = results["camerus2.json"]
    assert (mismatch["ok"], mismatch["reason"]) == (False, "type-mismatch")
    assert "registered as camerus1" in mismatch["errors"][0]
    registered = results["camerus3.json"]
    assert registered["ok"] and registered["notes"] == []
    unregistered = results["camerus1.json"]
    assert unregistered["ok"]
    assert unregistered["notes"] and "is not registered" in unregistered["notes"][0]

    named = cli("schema", "check", "camerus2", tmp_path / "camerus2.bin")
    assert named.code == 1
    assert "type-mismatch" in named.stdout.splitlines()[0]


# the made-up fourth type, from a schema file alone


def test_a_new_camera_type_from_a_schema_file(cli: Cli) -> None:
    schema_file = SCHEMAS / "camerus4.json"
    not_yet = add_camera(cli, "camerus4")
    assert not_yet.code == 2
    assert "unknown camera type 'camerus4'" in not_yet.stderr
    unknown = cli("schema", "check", CAMERUS4_SAMPLE, "--json")
    assert unknown.code == 1
    assert unknown.json()[0]["reason"] == "unknown-type"

    added = cli("schema", "add", "camerus4", "--file", schema_file, "--json")
    assert added.code == 0, added.output
    assert (added.json()["status"], added.json()["version"]) == ("registered", 1)
    assert listed(cli)["camerus4"] == {
        "name": "camerus4",
        "latest_version": 1,
        "versions": 1,
        "cameras": 0,
    }

    for args in ([CAMERUS4_SAMPLE], ["camerus4", CAMERUS4_SAMPLE]):
        out = cli("schema", "check", *args, "--json")
        assert out.code == 0, out.output
        assert_canonical(out.json()[0], "camerus4")

    camera_id, _ = EXPECTED_IDS["camerus4"]
    assert add_camera(cli, "camerus4", camera_id).code == 0
    assert listed(cli)["camerus4"]["cameras"] == 1
    out = cli("schema", "check", CAMERUS4_SAMPLE, "--json")
    assert out.json()[0]["notes"] == []


def test_dry_run_registers_nothing(cli: Cli) -> None:
    before = listed(cli)
    out = cli("schema", "add", "camerus4", "--file", SCHEMAS / "camerus4.json", "--dry-run")
    assert out.code == 0, out.output
    assert out.stdout.strip() == "camerus4: schema is valid; would register version 1 (dry run)"
    assert listed(cli) == before
    assert cli("schema", "versions", "camerus4").code == 2
    assert add_camera(cli, "camerus4").code == 2


def test_toml_schema_file_is_the_same_schema(cli: Cli) -> None:
    toml_file = SCHEMAS / "camerus4.toml"
    added = cli("schema", "add", "camerus4", "--file", toml_file)
    assert added.code == 0, added.output
    assert added.stdout.strip() == "camerus4: registered version 1"
    shown = cli("schema", "show", "camerus4")
    assert shown.stdout == toml_file.read_text(encoding="utf-8")
    out = cli("schema", "check", CAMERUS4_SAMPLE, "--json")
    assert out.code == 0, out.output
    assert_canonical(out.json()[0], "camerus4")

    # Same content in JSON: no new version.
    again = cli("schema", "add", "camerus4", "--file", SCHEMAS / "camerus4.json")
    assert again.code == 0
    assert again.stdout.strip() == (
        "camerus4: identical to the latest version 1; nothing registered"
    )
    versions = cli("schema", "versions", "camerus4", "--json").json()
    assert [(v["version"], v["format"]) for v in versions] == [(1, "toml")]


# schema files with mistakes


BROKEN = {
    "broken_unknown_type.json": "layout.transport.fields.chars.type: unknown type 'strng'",
    "broken_missing_path.json": "mapping.camera_id: path 'camera.serial' is not in the layout",
    "broken_missing_canonical.json": "mapping: missing canonical field 'skill'",
    "broken_invalid_regex.json": "layout.plate.pattern: invalid regex",
    "broken_layout_not_object.json": "layout: must be a non-empty object",
    "broken_malformed.json": "malformed JSON: Expecting property name",
}


def assert_schema_file_error(out: Outcome, path: Path, *expected: str) -> None:
    """One ``Error: FILE: N problem(s)`` line, then one indented line per problem."""
    assert out.code == 2, out.output
    assert out.stdout == ""
    first, *problems = error_lines(out)
    count = len(problems)
    assert first == f"Error: {path}: {count} problem{'s' if count != 1 else ''}", out.stderr
    assert problems and all(re.match(r"  \S", line) for line in problems), problems
    for wanted in expected:
        assert any(line.strip().startswith(wanted) for line in problems), (wanted, problems)


@pytest.mark.parametrize("fixture", sorted(BROKEN))
def test_schema_file_with_a_mistake_registers_nothing(cli: Cli, fixture: str) -> None:
    before = listed(cli)
    path = SCHEMAS / fixture
    out = cli("schema", "add", "camerus4", "--file", path)
    assert_schema_file_error(out, path, BROKEN[fixture])
    assert listed(cli) == before


def test_every_problem_of_a_schema_file_is_listed(cli: Cli, tmp_path: Path) -> None:
    schema = json.loads((SCHEMAS / "camerus4.json").read_text(encoding="utf-8"))
    schema["layout"]["review"]["fields"]["level"]["type"] = "integer"
    del schema["mapping"]["violation_id"]
    path = write_json(tmp_path / "two_mistakes.json", schema)
    out = cli("schema", "add", "camerus4", "--file", path, "--dry-run")
    assert_schema_file_error(
        out,
        path,
        "layout.review.fields.level.type: unknown type 'integer'",
        "mapping: missing canonical field 'violation_id'",
    )
    assert len(error_lines(out)) == 3


def test_unusable_schema_file_names(cli: Cli, tmp_path: Path) -> None:
    before = listed(cli)
    missing = tmp_path / "nope.json"
    out = cli("schema", "add", "camerus4", "--file", missing)
    assert out.code == 2
    assert error_lines(out) == [f"Error: {missing}: no such file"]

    yaml_file = tmp_path / "camerus4.yaml"
    yaml_file.write_text("layout: {}\n", encoding="utf-8")
    out = cli("schema", "add", "camerus4", "--file", yaml_file)
    assert out.code == 2
    assert error_lines(out) == [f"Error: {yaml_file}: schema files must end in .json or .toml"]
    assert listed(cli) == before


# versions


def test_versions_of_a_camera_type(cli: Cli, tmp_path: Path) -> None:
    v1_text = (SCHEMAS / "camerus4.json").read_text(encoding="utf-8")
    v1_file = tmp_path / "camerus4.json"
    v1_file.write_text(v1_text, encoding="utf-8")
    assert cli("schema", "add", "camerus4", "--file", v1_file).code == 0

    same = cli("schema", "add", "camerus4", "--file", v1_file)
    assert same.code == 0
    assert same.stdout.strip() == "camerus4: identical to the latest version 1; nothing registered"
    assert listed(cli)["camerus4"]["versions"] == 1

    # v2 accepts knots as a unit; a sample measured in knots tells the versions apart.
    v2 = json.loads(v1_text)
    v2["layout"]["offence"]["fields"]["unit"]["enum"].append("kn")
    v2_file = write_json(tmp_path / "camerus4-v2.json", v2)
    v2_text = v2_file.read_text(encoding="utf-8")
    added = cli("schema", "add", "camerus4", "--file", v2_file)
    assert added.code == 0, added.output
    assert added.stdout.strip() == "camerus4: registered version 2"

    versions = cli("schema", "versions", "camerus4", "--json")
    assert [v["version"] for v in versions.json()] == [1, 2]
    table = cli("schema", "versions", "camerus4")
    assert table.code == 0 and "camerus4 versions" in table.stdout
    assert listed(cli)["camerus4"] == {
        "name": "camerus4",
        "latest_version": 2,
        "versions": 2,
        "cameras": 0,
    }
    assert cli("schema", "show", "camerus4").stdout == v2_text
    assert cli("schema", "show", "camerus4", "--version", "1").stdout == v1_text
    assert cli("schema", "show", "camerus4", "--version", "2", "--json").json()["content"] == (
        v2_text
    )

    # Going back to v1's content is refused plainly, not silently "succeeded".
    back = cli("schema", "add", "camerus4", "--file", v1_file)
    assert back.code == 2
    assert "identical to older version 1, but the latest is version 2" in back.stderr
    assert "nothing registered" in back.stderr
    quiet = cli("--quiet", "schema", "add", "camerus4", "--file", v1_file)
    assert quiet.code == 2
    assert "identical to older version 1" in quiet.stderr
    as_json = cli("schema", "add", "camerus4", "--file", v1_file, "--json")
    assert as_json.code == 2
    assert (as_json.json()["status"], as_json.json()["latest"]) == ("matches-older", 2)

    # Whitespace and key order are no change.
    reformatted = tmp_path / "camerus4-v2-reformatted.json"
    reordered = dict(reversed(list(v2.items())))
    reformatted.write_text(json.dumps(reordered, indent=8, sort_keys=False), encoding="utf-8")
    same_v2 = cli("schema", "add", "camerus4", "--file", reformatted)
    assert same_v2.code == 0
    assert same_v2.stdout.strip() == (
        "camerus4: identical to the latest version 2; nothing registered"
    )
    assert [v["version"] for v in cli("schema", "versions", "camerus4", "--json").json()] == [1, 2]

    # Checks name the version they used.
    sample = json.loads(CAMERUS4_SAMPLE.read_text(encoding="utf-8"))
    sample["offence"]["unit"] = "kn"
    knots = write_json(tmp_path / "knots.json", sample)
    latest = cli("schema", "check", knots)
    assert latest.code == 0, latest.output
    assert latest.stdout.splitlines()[0] == f"{knots}: ok (camerus4 v2)"
    assert "  violation_value: 62kn" in latest.stdout.splitlines()
    old = cli("schema", "check", "camerus4", knots, "--version", "1")
    assert old.code == 1
    assert old.stdout.splitlines()[0] == f"{knots}: invalid (camerus4 v1)"
    assert any(
        line.startswith("  offence.unit: must be one of") for line in old.stdout.splitlines()
    )


# names that do not exist or cannot exist


def test_bad_and_unknown_type_names(cli: Cli) -> None:
    before = listed(cli)
    bad = cli("schema", "add", "Bad Name", "--file", SCHEMAS / "camerus4.json")
    assert bad.code == 2
    [line] = error_lines(bad)
    assert line.startswith("Error: bad camera type name 'Bad Name'")
    assert listed(cli) == before

    for command in ("show", "versions"):
        out = cli("schema", command, "nosuch")
        assert out.code == 2
        assert error_lines(out) == ["Error: no camera type 'nosuch'"]
        assert out.stdout == ""
    no_version = cli("schema", "show", "camerus1", "--version", "9")
    assert no_version.code == 2
    assert error_lines(no_version) == ["Error: no version 9 of camera type 'camerus1'"]
