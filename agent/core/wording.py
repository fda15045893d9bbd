"""Numbers and counts as people read them. JSON output keeps full precision; only text goes through here."""

from __future__ import annotations

import math
from typing import Any

PLURALS = {"hypothesis": "hypotheses", "analysis": "analyses", "query": "queries", "entry": "entries"}


def plural(noun: str) -> str:
    return PLURALS.get(noun, noun + "s")


def count(n: int, noun: str) -> str:
    """`1 row`, `2 rows`, `1,204 traces`."""
    return f"{n:,} {noun if n == 1 else plural(noun)}"


def number(value: Any) -> str:
    """A float rounded for reading (10148.449999 -> 10,148; 0.0123456 -> 0.0123); anything else as is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if not isinstance(value, float) or not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"
