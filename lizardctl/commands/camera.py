"""``lizardctl camera``: the registry of cameras whose shots are accepted."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._imports import CameraSheetArg, say_import
from lizardctl.commands._runtime import (
    Column,
    FormatOpt,
    JsonOpt,
    emit_json,
    print_fields,
    print_table,
    run,
    table_format,
    wants_json,
)
from lizardctl.core.choices import TableFormat

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.cameras import CameraView
    from lizardctl.core.services.imports import ImportReport

app = typer.Typer(help="Register and list cameras.", no_args_is_help=True)


@app.command()
def add(
    ctx: typer.Context,
    camera_type: Annotated[str, typer.Option("--type", help="Registered camera type.")],
    lat: Annotated[float, typer.Option("--lat", help="Latitude, -90..90.")],
    lon: Annotated[float, typer.Option("--lon", help="Longitude, -180..180.")],
    description: Annotated[str, typer.Option("--description", help="Up to 100 characters.")] = "",
    camera_id: Annotated[
        uuid.UUID | None, typer.Option("--id", help="Camera UUID (default: a new one).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Register one camera and print its id.
    Example: lizardctl camera add --type camerus1 --lat 55.75 --lon 37.62"""
    from lizardctl.core.services.cameras import CameraService

    async def work(db: Database) -> CameraView:
        return await CameraService(db.uow).add(camera_type, lat, lon, description, camera_id)

    camera = run(ctx, work)
    if wants_json(ctx, json_):
        emit_json(camera.to_dict())
    else:
        typer.echo(str(camera.id))


@app.command("list")
def list_(
    ctx: typer.Context,
    camera_type: Annotated[
        str | None, typer.Option("--type", help="Only cameras of this type.")
    ] = None,
    fmt: FormatOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List registered cameras.  Example: lizardctl camera list --type camerus2 --json"""
    from lizardctl.core.services.cameras import CameraService

    async def work(db: Database) -> list[CameraView]:
        return await CameraService(db.uow).list(camera_type)

    cameras = run(ctx, work, read_only=True)
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json([c.to_dict() for c in cameras])
        return
    print_table(
        f"{len(cameras)} camera(s)",
        [
            Column("id", "id", keep=True),
            Column("type", "key", rank=1),
            Column("latitude", "number", rank=2),
            Column("longitude", "number", rank=2),
            Column("description", rank=3),
        ],
        [(c.id, c.camera_type, c.latitude, c.longitude, c.description) for c in cameras],
        form,
    )


@app.command()
def show(
    ctx: typer.Context,
    camera_id: Annotated[
        str, typer.Argument(metavar="ID", help="Camera UUID, or a unique prefix of one.")
    ],
    json_: JsonOpt = False,
) -> None:
    """Show one camera.  Example: lizardctl camera show 104fc08a-efb6-427f-9193-2d54e4ed3e12"""
    from lizardctl.core.services.cameras import CameraService

    async def work(db: Database) -> CameraView:
        return await CameraService(db.uow).show(camera_id)

    camera = run(ctx, work, read_only=True)
    if wants_json(ctx, json_):
        emit_json(camera.to_dict())
    else:
        print_fields(camera.to_dict().items())


@app.command("import")
def import_(ctx: typer.Context, file: CameraSheetArg, json_: JsonOpt = False) -> None:
    """Import cameras (columns id,type,latitude,longitude,description) in one transaction:
    new ids are added, changed coordinates or descriptions updated and listed; a camera
    may not change type; bad rows are listed with their line numbers and nothing is
    imported. Re-importing the same file changes nothing.
    Example: lizardctl camera import cameras.csv"""
    from lizardctl.core.services.cameras import CameraService

    async def work(db: Database) -> ImportReport:
        return await CameraService(db.uow).import_file(file)

    say_import(ctx, run(ctx, work), wants_json(ctx, json_))
