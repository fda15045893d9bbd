"""Census: the quantitative baseline, computed by SQL before any hypothesis."""

from __future__ import annotations

from langgraph.runtime import Runtime

from analyze_experiment.agent.core.wording import count, number
from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.nodes.common import tools_for
from analyze_experiment.graphs.progress import phase
from analyze_experiment.graphs.state import AnalysisState


def census(state: AnalysisState, runtime: Runtime[NodeContext]) -> AnalysisState:
    phase(runtime, "census: computing the baseline (error rate, latency, spans, tools, markers)")
    baseline = tools_for(state, runtime).compute_census()
    phase(
        runtime,
        f"census: {count(baseline.trace_count, 'trace')}, error rate {baseline.error_rate:.1%}, "
        f"p95 {number(baseline.latency_ms.get('p95'))} ms",
    )
    return {"phase": "hypothesize"}
