"""Scrub secrets from any text before it is printed, logged or stored."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Shapes of the tokens this tool handles: Databricks PATs, OpenAI-style keys, Slack tokens, bearer
# headers, and passwords inside connection URLs.
_PATTERNS = (
    re.compile(r"dapi[0-9a-f]{32}(?:-\d+)?"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"\bxapp-[A-Za-z0-9\-]{10,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?<=://)([^:/@\s]+):([^@/\s]+)(?=@)"),
)


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    for secret in known_secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in _PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    if match.re.pattern.startswith("(?<=://)"):
        return f"{match.group(1)}:***"
    if match.re.pattern.startswith("(?i)(bearer"):
        return f"{match.group(1)}***"
    return "***"
