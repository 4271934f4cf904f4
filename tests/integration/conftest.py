"""The database most integration tests start from, on both engines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lizardctl.core.db.database import Database
from lizardctl.core.services.reviews import ReviewService
from tests.integration.test_reviews_service import Clock, open_db


@pytest.fixture
async def db(migrated_db_url: str) -> AsyncIterator[Database]:
    """Migrated, with the built-in types, one camera and one photo (``open_db``); a test
    module that needs another start defines its own ``db``."""
    database = await open_db(migrated_db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
def reviews(db: Database, clock: Clock) -> ReviewService:
    return ReviewService(db.uow, now=clock)
