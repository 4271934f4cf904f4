"""One page of a limited listing: the rows shown, how many there are in all, and where
the page starts, so no listing cuts rows off without saying so."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    """Rows matching the filters, counted by the database, not by fetching them."""
    offset: int = 0

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, or None when this one reaches the end."""
        end = self.offset + len(self.items)
        return end if end < self.total else None

    def to_dict(self, item: Callable[[T], Any]) -> dict[str, Any]:
        """The ``--json`` shape of every limited listing."""
        return {
            "total": self.total,
            "offset": self.offset,
            "next_offset": self.next_offset,
            "items": [item(row) for row in self.items],
        }
