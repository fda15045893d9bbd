"""How far an analysis may go: the one place each limit's default is set (the CLI and the session read it)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_HYPOTHESES_RANGE = (1, 50)  # what a person may ask for


@dataclass(frozen=True)
class Limits:
    max_hypotheses: int = 10
    tool_calls: int = 16  # per hypothesis test
    tokens: int = 60_000  # per hypothesis test, LLM analyst only
    parallel: int = 3  # hypotheses tested at once
