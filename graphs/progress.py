"""Progress from inside nodes to whichever front end streams the graph (`stream_mode="custom"`)."""

from __future__ import annotations

from typing import TypeVar

from langgraph.runtime import Runtime

from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.tools.events import EventSink, ToolEvent

C = TypeVar("C", bound=NodeContext)


def sink(runtime: Runtime[C]) -> EventSink:
    writer = runtime.stream_writer

    def emit(event: ToolEvent) -> None:
        writer(event.model_dump())

    return emit


def phase(runtime: Runtime[C], text: str) -> None:
    sink(runtime)(ToolEvent(kind="phase", text=text))
