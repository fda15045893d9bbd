"""Hypothesize: testable hypotheses that cite the census, each with a testing plan and SQL.

Two steps, so a crash cannot lose part of the list: the analyst's drafts are checkpointed with the
graph state first, then each is written (creating a hypothesis with a known statement is a no-op),
and a resumed thread writes the rest of the same drafts instead of asking for new ones.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from analyze_experiment.graphs.analysts.base import HypothesisDraft
from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.nodes.common import tools_for
from analyze_experiment.graphs.progress import phase
from analyze_experiment.graphs.state import AnalysisState


def hypothesize(state: AnalysisState, runtime: Runtime[NodeContext]) -> AnalysisState:
    phase(runtime, "hypothesize: deriving testable hypotheses from the census")
    tools = tools_for(state, runtime)
    limit = runtime.context.limits.max_hypotheses
    drafts = runtime.context.analyst.hypothesize(tools, tools.census(), tools.analysis(), limit)[:limit]
    return {"drafts": [draft.model_dump(mode="json") for draft in drafts], "phase": "record_hypotheses"}


def record_hypotheses(state: AnalysisState, runtime: Runtime[NodeContext]) -> AnalysisState:
    tools = tools_for(state, runtime)
    for body in state.get("drafts", []):
        draft = HypothesisDraft.model_validate(body)
        tools.create_hypothesis(
            draft.statement, draft.rationale, draft.testing_plan, draft.sql, draft.category, draft.statistics
        )
    return {"drafts": [], "phase": "approve_hypotheses"}
