"""Progress from inside nodes to whichever front end streams the graph (`stream_mode="custom"`)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from analyze_experiment.graphs.context import AnalysisContext
from analyze_experiment.tools.events import EventSink, ToolEvent


def sink(runtime: Runtime[AnalysisContext]) -> EventSink:
    writer = runtime.stream_writer

    def emit(event: ToolEvent) -> None:
        writer(event.model_dump())

    return emit


def phase(runtime: Runtime[AnalysisContext], text: str) -> None:
    sink(runtime)(ToolEvent(kind="phase", text=text))
