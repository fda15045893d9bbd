"""The toolbox a node works with, bound to the thread's analysis and reporting to the live view."""

from __future__ import annotations

from langgraph.runtime import Runtime

from analyze_experiment.graphs.context import AnalysisContext
from analyze_experiment.graphs.progress import sink
from analyze_experiment.graphs.state import AnalysisState
from analyze_experiment.tools.budget import Budget
from analyze_experiment.tools.toolbox import Toolbox


def toolbox(
    state: AnalysisState,
    runtime: Runtime[AnalysisContext],
    hypothesis_id: str | None = None,
    budget: Budget | None = None,
) -> Toolbox:
    return runtime.context.workbench.toolbox(state["experiment_id"], state["run_id"], on_event=sink(runtime),
                                             budget=budget, hypothesis_id=hypothesis_id)  # fmt: skip
