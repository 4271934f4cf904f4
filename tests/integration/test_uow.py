"""The UnitOfWork contract: nothing persists without commit(), and repositories cannot commit."""

from __future__ import annotations

import ast
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import CameraType
from lizardctl.core.repositories.base import SessionView

REPOSITORIES = Path(__file__).parents[2] / "lizardctl" / "core" / "repositories"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(parse_db_url(db_url))
    await migrate.upgrade(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


async def _type_names(db: Database) -> set[str]:
    async with db.uow() as uow:
        return set(await uow.schemas.type_names())


async def test_commit_persists(db: Database) -> None:
    async with db.uow() as uow:
        await uow.schemas.add_type("committed")
        await uow.commit()
    assert "committed" in await _type_names(db)


async def test_exit_without_commit_rolls_back(db: Database) -> None:
    async with db.uow() as uow:
        await uow.schemas.add_type("forgotten")
    assert "forgotten" not in await _type_names(db)


async def test_exception_rolls_back(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.uow() as uow:
            await uow.schemas.add_type("failed")
            raise RuntimeError("boom")
    assert "failed" not in await _type_names(db)


async def test_explicit_rollback_discards(db: Database) -> None:
    async with db.uow() as uow:
        await uow.schemas.add_type("undone")
        await uow.rollback()
        await uow.schemas.add_type("kept")
        await uow.commit()
    names = await _type_names(db)
    assert "undone" not in names
    assert "kept" in names


async def test_flush_is_not_commit(db: Database) -> None:
    async with db.uow() as uow:
        await uow.schemas.add_type("flushed")
        await uow.cameras.session.flush()
        visible_inside = await uow.cameras.session.scalar(
            select(CameraType.name).where(CameraType.name == "flushed")
        )
    assert visible_inside == "flushed"
    assert "flushed" not in await _type_names(db)


async def test_uow_outside_context_is_an_error(db: Database) -> None:
    with pytest.raises(RuntimeError, match="outside"):
        await db.uow().commit()


def test_session_view_offers_no_transaction_control() -> None:
    for name in ("commit", "rollback", "close", "begin", "begin_nested"):
        assert not hasattr(SessionView, name), name


def test_no_repository_ends_a_transaction() -> None:
    """A repository calling commit()/rollback() on anything is caught here, whatever it holds."""
    offenders = []
    for path in sorted(REPOSITORIES.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"commit", "rollback"}:
                offenders.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert offenders == []


async def test_repository_sees_only_the_view(db: Database) -> None:
    async with db.uow() as uow:
        assert isinstance(uow.cameras.session, SessionView)
        with pytest.raises(AttributeError):
            uow.cameras.session.commit  # type: ignore[attr-defined]  # noqa: B018
        assert await uow.cameras.get(uuid.uuid4()) is None
