"""Errors that reach the person at the terminal.

`UserError` and its subclasses are refusals: the input or the state does not allow the request. The
CLI prints their message as one line and exits 2. Anything else is unexpected and exits 1.
"""

from __future__ import annotations


class UserError(Exception):
    """A refusal with a message that says what to do instead."""

    exit_code = 2
    kind = "refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(UserError):
    kind = "configuration"


class NotFoundError(UserError):
    kind = "not_found"


class InvariantViolation(UserError):
    """A request that would break one of the analysis rules (see agent/core/insights/invariants.py)."""

    kind = "invariant"


class InvalidInput(UserError):
    """A value an analysis document cannot hold: blank, too long, malformed."""

    kind = "invalid"


class DecisionRefused(UserError):
    """An approval's answer that cannot be applied; nothing of it was. Ask the person again."""

    kind = "decision"


class StaleWriteError(UserError):
    """Someone else changed the object since it was read."""

    kind = "stale_write"


class StoreUnavailableError(Exception):
    """The tracking store did not answer after retries. Exit 1: nothing was refused, try again."""

    exit_code = 1
    kind = "store_unavailable"


class AnalystError(Exception):
    """The model endpoint failed, or gave no usable answer, after retries."""

    kind = "model"


class ContextOverflow(AnalystError):
    """The prompt is longer than the model's context window."""


class AnalysisPaused(Exception):
    """Something outside the analysis failed mid-way; it stopped at its last saved step and can resume.

    Exit 75 (EX_TEMPFAIL): nothing was refused and nothing is lost; try again later."""

    exit_code = 75
    kind = "paused"
