"""Numbers and counts for people: rounded where read, exact in JSON."""

from __future__ import annotations

import pytest

from analyze_experiment.agent.core.wording import count, number


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (10148.449999999999, "10,148"),
        (42.5, "42.5"),
        (3.0, "3"),
        (0.012345678, "0.0123"),
        (1204, "1,204"),
        (True, "True"),
        ("x", "x"),
        (float("nan"), "nan"),
    ],
)
def test_numbers_are_rounded_for_reading(value: object, shown: str) -> None:
    assert number(value) == shown


def test_counts_agree_with_their_number() -> None:
    assert [count(1, "row"), count(2, "row"), count(1, "hypothesis"), count(3, "hypothesis")] == [
        "1 row",
        "2 rows",
        "1 hypothesis",
        "3 hypotheses",
    ]
