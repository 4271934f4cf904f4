"""The review workflow's pure parts: consensus, input checks, export rows, report figures,
and the claim loop's handling of lost races, on fakes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from lizardctl.core.services.export import CSV_COLUMNS, ExportedCase, group_votes
from lizardctl.core.services.history import VoteView
from lizardctl.core.services.review_report import ReviewReport, _with_agreement
from lizardctl.core.services.reviews import (
    CaseStatus,
    ReviewerIn,
    ReviewService,
    consensus,
    tally,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


@pytest.mark.parametrize(
    ("verdicts", "outcome"),
    [
        (["violation"] * 3, CaseStatus.CONFIRMED),
        (["no-violation"] * 3, CaseStatus.DISMISSED),
        (["violation", "violation", "no-violation"], CaseStatus.ESCALATED),
        (["no-violation", "violation"], CaseStatus.ESCALATED),
        (["violation"], CaseStatus.CONFIRMED),
    ],
)
def test_consensus(verdicts: list[str], outcome: CaseStatus) -> None:
    assert consensus(verdicts) is outcome


def test_consensus_needs_votes() -> None:
    with pytest.raises(ValueError, match="no votes"):
        consensus([])


def test_tally_names_only_verdicts_cast() -> None:
    assert tally(["violation", "no-violation", "violation"]) == "2 violation, 1 no-violation"
    assert tally(["no-violation"]) == "1 no-violation"


@pytest.mark.parametrize(
    ("name", "skill"), [("", 1), ("has space", 1), ("-dash", 1), ("x" * 65, 1), ("ann", 0)]
)
def test_reviewer_input_is_checked(name: str, skill: int) -> None:
    with pytest.raises(ValidationError):
        ReviewerIn(name=name, skill=skill)


def test_reviewer_input_strips_names() -> None:
    assert ReviewerIn(name=" ann.b@x ", skill=100).name == "ann.b@x"


def _row(case: uuid.UUID, reviewer: str | None, verdict: str | None = None) -> Any:
    return SimpleNamespace(
        id=case,
        status="confirmed",
        plate="1ABC2377",
        camera_id=uuid.UUID(int=9),
        violation_id=uuid.UUID(int=8),
        violation_value="62km/h",
        occurred_at=T0,
        decided_at=T0 + timedelta(hours=1),
        required_skill=3,
        decided_by=None,
        decision_note=None,
        reviewer=reviewer,
        level=2 if reviewer else None,
        verdict=verdict,
        voted_at=T0 if reviewer else None,
    )


async def _stream(batches: Iterable[list[Any]]) -> AsyncIterator[list[Any]]:
    for batch in batches:
        yield batch


async def test_votes_are_folded_into_one_row_per_case_across_batches() -> None:
    rows = [
        [_row(A, "ann", "violation")],
        [_row(A, "bob", "no-violation"), _row(B, None)],
        [_row(C, "cid", "violation")],
    ]
    batches = [batch async for batch in group_votes(_stream(rows))]
    assert [[c.case_id for c in batch] for batch in batches] == [[str(A)], [str(B)], [str(C)]]
    cases = [case for batch in batches for case in batch]
    assert [len(c.votes) for c in cases] == [2, 0, 1]
    assert cases[0].votes[1] == VoteView("bob", 2, "no-violation", T0)
    assert [b async for b in group_votes(_stream([]))] == []


def test_csv_row_puts_votes_in_one_cell() -> None:
    case = ExportedCase(
        str(A),
        "confirmed",
        "1ABC2377",
        str(B),
        str(C),
        "62km/h",
        T0,
        T0 + timedelta(hours=1),
        3,
        (VoteView("ann", 2, "violation", T0), VoteView("bob", 3, "violation", T0)),
    )
    row = dict(zip(CSV_COLUMNS, case.csv_row(), strict=True))
    assert row["votes"] == "ann@2=violation;bob@3=violation"
    assert row["decided_at"] == "2026-11-25T11:00:00+00:00"
    assert case.to_dict()["votes"][0] == {
        "reviewer": "ann",
        "level": 2,
        "verdict": "violation",
        "voted_at": T0.isoformat(),
    }


def test_report_rates_and_agreement() -> None:
    report = ReviewReport(
        T0,
        T0 + timedelta(hours=4),
        [],
        0,
        [{"hour": "h1", "total": 6}, {"hour": "h2", "total": 4}],
        None,
        [],
    )
    assert (report.decisions, report.decisions_per_hour) == (10, 2.5)
    row = {"votes": 5, "violation": 3, "on_decided": 4, "agreed": 3}
    assert _with_agreement(row) == {**row, "no_violation": 2, "agreement": 0.75}
    assert _with_agreement({**row, "on_decided": 0})["agreement"] is None


class FakeAssignments:
    """Scripted answers of the assignment queries, and the calls that asked them."""

    def __init__(
        self, locked: list[uuid.UUID | None], free: list[uuid.UUID | None], full: set[uuid.UUID]
    ) -> None:
        self.locked, self.free, self.full = locked, free, full
        self.calls: list[tuple[bool, tuple[uuid.UUID, ...]]] = []

    async def candidate(self, *rules: Any, lock: bool) -> uuid.UUID | None:
        self.calls.append((lock, tuple(rules[-1])))
        return (self.locked if lock else self.free).pop(0)

    async def still_assignable(self, case_id: uuid.UUID, *rules: Any) -> bool:
        return case_id not in self.full


async def _claim(assignments: FakeAssignments) -> uuid.UUID | None:
    uow = SimpleNamespace(assignments=assignments)
    reviewer = SimpleNamespace(skill=1, id=7)
    return await ReviewService._claim(uow, reviewer, 3, T0)  # type: ignore[arg-type]


async def test_claim_passes_over_a_case_filled_by_a_race() -> None:
    fake = FakeAssignments(locked=[A, B], free=[], full={A})
    assert await _claim(fake) == B
    assert fake.calls == [(True, ()), (True, (A,))]


async def test_claim_waits_for_cases_locked_by_other_assigners() -> None:
    fake = FakeAssignments(locked=[None, None, C], free=[C, C], full=set())
    assert await _claim(fake) == C
    assert [lock for lock, _ in fake.calls] == [True, False, True, False, True]


async def test_claim_gives_up_when_nothing_is_assignable() -> None:
    fake = FakeAssignments(locked=[None], free=[None], full=set())
    assert await _claim(fake) is None
