"""Trace text that cannot be encoded: lone UTF-16 surrogates (`"\\udce9"` in JSON) decode into Python
strings but break every UTF-8 writer (DuckDB, reports, the terminal). They become U+FFFD, the
replacement character, wherever trace text enters the tool."""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def scrub(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys included) replaced."""
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)
    return value
