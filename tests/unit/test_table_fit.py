"""How tables give way on a narrow terminal: the pure layout rules behind print_table."""

from __future__ import annotations

from lizardctl.commands._runtime import (
    Column,
    fit_columns,
    fit_text,
    infer_column,
    unique_prefix,
)

ID = Column("id", "id", keep=True)
PLATE = Column("plate", "key", keep=True)
NOTE = Column("note", rank=2)
CAMERA = Column("camera", "id", rank=5)


def test_everything_whole_when_it_fits_or_off_a_terminal() -> None:
    columns, natural = [ID, PLATE, NOTE], [36, 9, 40]
    assert fit_columns(columns, natural, None).widths == natural
    assert fit_columns(columns, natural, 200).widths == natural


def test_ids_shorten_first_then_the_least_important_columns_go() -> None:
    columns, natural = [ID, PLATE, CAMERA, NOTE], [36, 9, 36, 40]
    shortened = fit_columns(columns, natural, 80, [8, 9, 8, 12])
    assert shortened.widths == [8, 9, 8, 40]
    assert shortened.shortened_ids
    narrow = fit_columns(columns, natural, 40, [8, 9, 8, 12])
    assert narrow.widths[:3] == [8, 9, None], "camera (rank 5) hidden before the note"
    assert narrow.widths[3] is not None and narrow.widths[3] >= 12


def test_columns_that_identify_a_row_are_never_hidden() -> None:
    columns = [ID, PLATE, NOTE]
    layout = fit_columns(columns, [36, 9, 40], 10, [8, 9, 12])
    assert layout.widths[0] == 8 and layout.widths[1] == 9 and layout.widths[2] is None


def test_unique_prefix_is_at_least_eight_and_tells_values_apart() -> None:
    assert unique_prefix(["aaaaaaaa1111", "bbbbbbbb2222"]) == 8
    assert unique_prefix(["aaaaaaaaa1", "aaaaaaaaa2"]) == 10
    assert unique_prefix([]) == 0


def test_paths_keep_their_end_in_whole_components_and_ids_their_start() -> None:
    path = Column("photo", "path")
    assert (
        fit_text("/mnt/dumps/night/camera-7/shot-0042.jpg", path, 24) == "…/camera-7/shot-0042.jpg"
    )
    assert fit_text("3f2a0c1e-8d5b-4c1e", ID, 8) == "3f2a0c1e"
    assert fit_text("short", path, 24) == "short"


def test_columns_named_only_by_header_are_inferred_from_their_values() -> None:
    assert infer_column("n", ["1,234.50", "-", "7"]).kind == "number"
    assert infer_column("case", ["3f2a0c1e-8d5b-4c1e-9f7a-2b6d4e8c0a11"]).kind == "id"
    assert infer_column("at", ["2026-11-25T03:14:00+00:00", "2026-11-25"]).kind == "date"
    assert infer_column("message", ["no metadata file", "12"]).kind == "text"
