"""Fines as integer minor units: exact in the database, in sums and in every output.

A fine is written by managers as ``500`` or ``1500.50`` (two decimals at most) and stored
as minor units (kopecks, cents): ``150050``. Floats never hold money here; amounts are
shown as decimal strings so no consumer has to guess a binary approximation.
"""

from __future__ import annotations

import re
from decimal import Decimal

MINOR_PER_MAJOR = 100
MAX_FINE_MINOR = 10**15
"""A ceiling far above any real fine that still leaves sums of millions well inside BIGINT."""

_AMOUNT = re.compile(r"^([0-9]+)(?:\.([0-9]{1,2}))?$")


def parse_amount(text: str) -> int:
    """``"1500.5"`` -> ``150050``; refuses signs, separators, exponents and a third decimal."""
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise ValueError("must be an amount like 500 or 1500.50 (at most 2 decimals)")
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    minor = int(whole) * MINOR_PER_MAJOR + int(cents)
    if minor > MAX_FINE_MINOR:
        raise ValueError(f"must be at most {format_amount(MAX_FINE_MINOR)}")
    return minor


def format_amount(minor: int) -> str:
    """``150050`` -> ``"1500.50"``."""
    return str(Decimal(minor).scaleb(-2).quantize(Decimal("0.01")))
