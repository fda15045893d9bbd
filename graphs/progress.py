"""Progress from inside nodes to whichever front end streams the graph (`stream_mode="custom"`)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graphs.context import AnalysisContext
from tools.events import EventSink, ToolEvent


def sink(runtime: Runtime[AnalysisContext]) -> EventSink:
    writer = runtime.stream_writer

    def emit(event: ToolEvent) -> None:
        writer(event.model_dump())

    return emit


def phase(runtime: Runtime[AnalysisContext], text: str) -> None:
    sink(runtime)(ToolEvent(kind="phase", text=text))
