"""The tools a node works with, bound to the thread's analysis and reporting to the live view."""

from __future__ import annotations

from typing import TypeVar

from langgraph.runtime import Runtime

from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.progress import sink
from analyze_experiment.graphs.state import AnalysisState, TestTask
from analyze_experiment.tools.budget import Budget
from analyze_experiment.tools.protocols import AnalysisTools

C = TypeVar("C", bound=NodeContext)


def tools_for(
    state: AnalysisState | TestTask,
    runtime: Runtime[C],
    hypothesis_id: str | None = None,
    budget: Budget | None = None,
) -> AnalysisTools:
    return runtime.context.tool_source.tools_for(
        state["experiment_id"], state["run_id"], on_event=sink(runtime), budget=budget, hypothesis_id=hypothesis_id
    )
