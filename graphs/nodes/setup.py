"""Setup: connect, check that the experiment has traces, and open (or find) the analysis run."""

from __future__ import annotations

from langgraph.runtime import Runtime

from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.progress import phase, sink
from analyze_experiment.graphs.state import AnalysisState


def setup(state: AnalysisState, runtime: Runtime[NodeContext]) -> AnalysisState:
    phase(runtime, "setup: checking the experiment and opening the analysis run")
    analysis = runtime.context.tool_source.open_analysis(
        state["experiment_id"],
        state["thread_id"],
        state.get("name") or f"analysis {state['thread_id']}",
        state.get("focus", []),
        sink(runtime),
        outcomes=state.get("outcomes", {}),
    )
    return {"run_id": analysis.run_id, "phase": "describe"}
