"""Hypothesize: testable hypotheses that cite the census, each with a testing plan and SQL."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graphs.context import AnalysisContext
from graphs.nodes.common import toolbox
from graphs.progress import phase
from graphs.state import AnalysisState


def hypothesize(state: AnalysisState, runtime: Runtime[AnalysisContext]) -> dict[str, Any]:
    phase(runtime, "hypothesize: deriving testable hypotheses from the census")
    tools = toolbox(state, runtime)
    if not tools.list_hypotheses():
        limit = state.get("max_hypotheses") or runtime.context.limits.max_hypotheses
        drafts = runtime.context.analyst.hypothesize(tools, tools.census(), tools.analysis(), limit)
        for draft in drafts[:limit]:
            tools.create_hypothesis(draft.statement, draft.rationale, draft.testing_plan, draft.sql, draft.category)
    return {"phase": "approve_hypotheses"}
