"""The toolbox a node works with, bound to the thread's analysis and reporting to the live view."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graphs.context import AnalysisContext
from graphs.progress import sink
from graphs.state import AnalysisState
from tools.budget import Budget
from tools.toolbox import Toolbox


def toolbox(
    state: AnalysisState,
    runtime: Runtime[AnalysisContext],
    hypothesis_id: str | None = None,
    budget: Budget | None = None,
) -> Toolbox:
    return runtime.context.workbench.toolbox(state["experiment_id"], state["run_id"], on_event=sink(runtime),
                                             budget=budget, hypothesis_id=hypothesis_id)  # fmt: skip
