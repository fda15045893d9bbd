"""Where the graph goes after an approval: routers return the next node's name or `Send`s."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Send

from analyze_experiment.agent.core.insights.models import HypothesisStatus, IssueStatus
from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.nodes.common import tools_for
from analyze_experiment.graphs.state import AnalysisState, TestTask


def route_tests(state: AnalysisState, runtime: Runtime[NodeContext]) -> list[Send] | Literal["issue"]:
    """One branch per hypothesis still TESTING and not yet tried; rejected ones are never sent."""
    done = set(state.get("tested", []))
    pending = [h.id for h in tools_for(state, runtime).list_hypotheses(HypothesisStatus.TESTING) if h.id not in done]
    if not pending:
        return "issue"
    return [
        Send("test_hypothesis", TestTask(experiment_id=state["experiment_id"], run_id=state["run_id"], hypothesis_id=h))
        for h in pending
    ]


def route_issue_approval(state: AnalysisState, runtime: Runtime[NodeContext]) -> Literal["approve_issues", "report"]:
    """Nothing to approve means no pause."""
    issues = tools_for(state, runtime).list_issues()
    return "approve_issues" if any(i.status is IssueStatus.OPEN for i in issues) else "report"
