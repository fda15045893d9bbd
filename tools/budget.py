"""Per-hypothesis limits: a test that runs out stops with what it found, never with a guess."""

from __future__ import annotations

import threading


class BudgetExhausted(Exception):
    """Raised by the tool call that would exceed the budget."""


class Budget:
    def __init__(self, tool_calls: int, tokens: int) -> None:
        self.tool_calls = tool_calls
        self.tokens = tokens
        self.used_calls = 0
        self.used_tokens = 0
        self._lock = threading.Lock()

    def spend_call(self, what: str) -> None:
        with self._lock:
            if self.used_calls >= self.tool_calls:
                raise BudgetExhausted(f"tool-call budget of {self.tool_calls} spent before {what}")
            self.used_calls += 1

    def spend_tokens(self, count: int) -> None:
        with self._lock:
            self.used_tokens += count

    @property
    def tokens_left(self) -> int:
        return max(0, self.tokens - self.used_tokens)

    def summary(self) -> str:
        return f"{self.used_calls}/{self.tool_calls} tool calls, {self.used_tokens}/{self.tokens} tokens"
