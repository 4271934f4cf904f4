"""``lizardctl photo``: stored photos, got out of the store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    JsonOpt,
    StoreOpt,
    emit_json,
    fail,
    info,
    open_store,
    run,
    silence_stdout,
    wants_json,
)

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.photos import Photo

app = typer.Typer(help="Get stored photos out of the photo store.", no_args_is_help=True)


@app.command()
def get(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="A case id or a photo's sha256, or a unique prefix of either (4+ hex).",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the photo to FILE (replaced whole, never left half-written); "
            "default: stdout, which must not be a terminal.",
        ),
    ] = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write the photo of a case, or of a sha256, to FILE or to stdout (a pipe or a file:
    binary is never written to a terminal). With -o, --json prints what was written.
    Example: lizardctl photo get 3f2a0c1e -o shot.jpg"""
    from lizardctl.core.files import write_atomically
    from lizardctl.core.services.photos import PhotoService

    as_json = wants_json(ctx, json_)
    if output is None and as_json:
        fail("--json describes a photo written with -o FILE; stdout holds the photo itself", 2)
    if output is None and sys.stdout.isatty():
        fail("stdout is a terminal: give -o FILE, or pipe the photo (| display, > shot.jpg)", 2)

    async def work(db: Database) -> Photo:
        photo = await PhotoService(db.uow, await open_store(db, store)).get(ref)
        if output is not None:
            write_atomically(output, photo.data)
        return photo

    photo = run(ctx, work, read_only=True)
    location = photo.found.location
    if output is None:
        try:
            sys.stdout.buffer.write(photo.data)
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
        return
    if as_json:
        emit_json(
            {
                "path": str(output),
                "sha256": location.sha256,
                "size": location.size,
                "case_id": str(photo.found.case_id) if photo.found.case_id else None,
            }
        )
    else:
        info(ctx, f"wrote {output} ({location.size:,} bytes, sha256 {location.sha256})")
