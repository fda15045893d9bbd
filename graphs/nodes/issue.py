"""Issue: validated hypotheses become issues with severity, numbers and evidence traces."""

from __future__ import annotations

from langgraph.runtime import Runtime

from analyze_experiment.agent.core.errors import InvariantViolation
from analyze_experiment.agent.core.insights.models import HypothesisStatus
from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.nodes.common import tools_for
from analyze_experiment.graphs.progress import phase
from analyze_experiment.graphs.state import AnalysisState


def issue(state: AnalysisState, runtime: Runtime[NodeContext]) -> AnalysisState:
    phase(runtime, "issue: turning validated hypotheses into issues")
    tools = tools_for(state, runtime)
    covered = {i.hypothesis_id: i for i in tools.list_issues()}
    for hypothesis in tools.list_hypotheses(HypothesisStatus.VALIDATED):
        if hypothesis.id in covered:
            tools.finish_issue(covered[hypothesis.id])  # written before a crash: make sure it is whole
            continue
        draft = runtime.context.analyst.draft_issue(tools, hypothesis)
        if draft is None:
            continue
        try:
            tools.create_issue(
                hypothesis.id, draft.title, draft.description, draft.severity, draft.evidence, draft.category
            )
        except InvariantViolation as refused:
            phase(runtime, f"issue from {hypothesis.id} refused by the rules: {refused}")
    return {"phase": "approve_issues"}
