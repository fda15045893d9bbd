"""Trace text on its way into the tool: made printable and stripped of credentials.

Lone UTF-16 surrogates (`"\\udce9"` in JSON) decode into Python strings but break every UTF-8 writer
(DuckDB, reports, the terminal); they become U+FFFD, the replacement character. Traces also carry
credentials their agents leaked (an API key in a prompt, a token in a tool call); `clean` masks
anything shaped like one before the analysis can quote it in a report, a note or a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from analyze_experiment.agent.core.redaction import redact

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean(value: Any) -> Any:
    """`scrub`, and credential-shaped strings masked: for trace text shown or stored by the tool."""
    return _each_string(value, lambda text: redact(_SURROGATE.sub(REPLACEMENT, text)))


def scrub(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys included) replaced."""
    return _each_string(value, lambda text: _SURROGATE.sub(REPLACEMENT, text))


def _each_string(value: Any, change: Callable[[str], str]) -> Any:
    """`value` rebuilt with `change` applied to every string in it, keeping lists, tuples and dicts."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {_each_string(k, change): _each_string(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_each_string(v, change) for v in value]
    if isinstance(value, tuple):
        return tuple(_each_string(v, change) for v in value)
    return value
