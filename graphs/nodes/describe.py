"""Describe: read about ten traces (errors and successes) and write what the traced agent does."""

from __future__ import annotations

from langgraph.runtime import Runtime

from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.nodes.common import tools_for
from analyze_experiment.graphs.progress import phase
from analyze_experiment.graphs.state import AnalysisState

SAMPLE_SQL = (
    "SELECT trace_id FROM (SELECT trace_id, state, request_time, row_number() OVER (PARTITION BY state "
    "ORDER BY request_time DESC) AS rn FROM traces) s WHERE (state = 'ERROR' AND rn <= 3) OR "
    "(state <> 'ERROR' AND rn <= 7) ORDER BY state, rn"
)


def describe(state: AnalysisState, runtime: Runtime[NodeContext]) -> AnalysisState:
    phase(runtime, "describe: reading sample traces to learn what the agent does")
    tools = tools_for(state, runtime)
    if tools.analysis().description:
        return {"phase": "approve_description"}  # a re-run after a crash keeps the description written
    ids = [str(row[0]) for row in tools.execute_sql(SAMPLE_SQL, record=False).rows][:10]
    samples = [tools.get_trace(trace_id) for trace_id in ids]
    tools.describe_agent(runtime.context.analyst.describe(tools, samples))
    return {"phase": "approve_description"}
