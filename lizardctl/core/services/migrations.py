"""Migrating the database (`db upgrade`, `db downgrade`) and reporting where its schema
stands (`db current`)."""

from __future__ import annotations

from dataclasses import dataclass

from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.services.schemas import register_builtins

UP_TO_DATE = "up to date"


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    url: str
    current: tuple[str, ...]
    head: tuple[str, ...]
    state: str


@dataclass(frozen=True, slots=True)
class Upgrade:
    url: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return set(self.before) != set(self.after)


class MigrationService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upgrade(self, revision: str = "head") -> Upgrade:
        """Migrate, then register the built-in camera types once the schema is complete;
        says where the schema stood before and after, so nobody is told "upgraded" when
        nothing changed."""
        before = await migrate.current_revisions(self.db.engine)
        await migrate.upgrade(self.db.engine, revision)
        after = await migrate.current_revisions(self.db.engine)
        if set(after) == set(migrate.head_revisions()):
            await register_builtins(self.db)
        return Upgrade(self.db.display_url, tuple(before), tuple(after))

    async def downgrade(self, revision: str) -> None:
        await migrate.downgrade(self.db.engine, revision)

    async def status(self) -> DatabaseStatus:
        current = await migrate.current_revisions(self.db.engine)
        head = migrate.head_revisions()
        if not current:
            state = "not migrated"
        elif set(current) == set(head):
            state = UP_TO_DATE
        else:
            state = "outdated"
        return DatabaseStatus(self.db.display_url, current, head, state)
