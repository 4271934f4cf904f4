"""StoreSpaceService on both engines: what reclaim chooses, and the packs it never touches."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from lizardctl.core.db.database import Database
from lizardctl.core.repositories.verify import PackKey
from lizardctl.core.services.store_space import StoreSpaceService
from lizardctl.core.services.verify import VerifyOptions, VerifyService
from lizardctl.core.store import PhotoStore
from lizardctl.core.store.identity import create_identity
from lizardctl.core.store.packs import list_packs
from tests.integration import test_verify_service as verify_tests
from tests.integration.test_verify_service import add_cases

db = verify_tests.db  # a migrated database with one camera, on both engines


def photos(tag: str, count: int) -> list[tuple[str, bytes]]:
    data = [f"{tag} photo {n} ".encode() * 40 for n in range(count)]
    return [(hashlib.sha256(d).hexdigest(), d) for d in data]


async def test_a_pack_being_written_is_never_judged_nor_touched(
    db: Database, tmp_path: Path
) -> None:
    """A live writer's pack holds records whose rows are not committed yet: not garbage."""
    root = tmp_path / "store"
    store = PhotoStore.at(root)
    store_id = create_identity(root)
    live = store.writer(store_id)
    live.append(photos("in flight", 5))
    live.sync()  # durable, its rows still to come; the writer holds the pack's lock
    live_pack = live.name
    sealed = store.writer(store_id)
    items = photos("sealed", 4)
    places = sealed.append(items)
    sealed.close()
    used = dict(zip([d for d, _ in items[:1]], places[:1], strict=True))  # 1 of 4 live
    await add_cases(db, [(items[0][0], len(items[0][1]))], used)
    service = StoreSpaceService(db.uow, store)
    try:
        space = (await VerifyService(db.uow, store).verify(VerifyOptions())).space
        assert (space.packs, space.active_packs, space.unreferenced_packs) == (2, 1, 0)
        plan = await service.reclaim(dry_run=True)
        assert [use.name for use in plan.chosen] == [places[0][0]]
        assert plan.active == 1
        done = await service.reclaim()
        assert live_pack in list_packs(root)
        assert places[0][0] not in list_packs(root)
        assert done.freed == plan.freed
    finally:
        live.close()
    async with db.uow() as uow:
        moved = await uow.photos.locate(items[0][0])
    assert moved is not None and moved.pack not in (places[0][0], live_pack)
    assert store.read(moved) == items[0][1]


async def test_live_below_decides_which_packs_are_rewritten(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = PhotoStore.at(root)
    store_id = create_identity(root)
    chosen: dict[float, list[str]] = {}
    rows: dict[str, tuple[str, int]] = {}
    names = []
    for live in (1, 3):  # a quarter and three quarters of four photos live
        writer = store.writer(store_id)
        items = photos(f"pack {live}", 4)
        places = writer.append(items)
        writer.close()
        names.append(places[0][0])
        rows |= dict(zip([d for d, _ in items[:live]], places[:live], strict=True))
        await add_cases(db, [(d, len(b)) for d, b in items[:live]], rows)
    service = StoreSpaceService(db.uow, store)
    for share in (0.1, 0.5, 0.9):
        plan = await service.reclaim(share, dry_run=True)
        chosen[share] = sorted(use.name for use in plan.chosen)
    assert chosen == {0.1: [], 0.5: [names[0]], 0.9: sorted(names)}  # in name order


async def test_verify_does_not_blame_photos_a_concurrent_reclaim_moved(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain verify is not held back by the guard: a reclaim may move rows and delete the
    pack between verify reading the rows and reading the pack."""
    root = tmp_path / "store"
    store = PhotoStore.at(root)
    store_id = create_identity(root)
    writer = store.writer(store_id)
    items = photos("moved", 4)
    places = writer.append(items)
    writer.close()
    await add_cases(db, [(items[0][0], len(items[0][1]))], {items[0][0]: places[0]})
    service = VerifyService(db.uow, store)
    fetch = service._packed

    async def read_then_reclaim(after: PackKey | None) -> Sequence[Any]:
        rows = await fetch(after)
        if after is None:  # the old pack's rows are read: now it goes
            done = await StoreSpaceService(db.uow, store).reclaim()
            assert [use.name for use in done.chosen] == [places[0][0]], done
        return rows

    monkeypatch.setattr(service, "_packed", read_then_reclaim)
    report = await service.verify(VerifyOptions())
    assert report.ok, report.listed
    assert places[0][0] not in list_packs(root)
