"""What the tools report while they work, for the live view (the seed's transparency rule)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

EventKind = Literal["phase", "search", "read", "sql", "write", "note"]


class ToolEvent(BaseModel):
    kind: EventKind
    text: str
    hypothesis_id: str | None = None


EventSink = Callable[[ToolEvent], None]


def ignore(_event: ToolEvent) -> None:
    return None
