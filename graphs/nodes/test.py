"""Test: one branch per approved hypothesis, run in parallel, each within its own budget."""

from __future__ import annotations

from langgraph.runtime import Runtime

from analyze_experiment.agent.core.errors import InvariantViolation, UserError
from analyze_experiment.agent.core.insights.models import HypothesisStatus
from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.nodes.common import tools_for
from analyze_experiment.graphs.progress import phase
from analyze_experiment.graphs.state import AnalysisState, TestTask
from analyze_experiment.tools.budget import Budget


def test_hypothesis(task: TestTask, runtime: Runtime[NodeContext]) -> AnalysisState:
    limits = runtime.context.limits
    budget = Budget(tool_calls=limits.tool_calls, tokens=limits.tokens)
    state = AnalysisState(experiment_id=task["experiment_id"], run_id=task["run_id"])
    tools = tools_for(state, runtime, hypothesis_id=task["hypothesis_id"], budget=budget)
    hypothesis = tools.get_hypothesis(task["hypothesis_id"])
    if hypothesis.status is not HypothesisStatus.TESTING:
        return {"tested": [hypothesis.id]}  # rejected at approval, or concluded before a crash
    phase(runtime, f"test {hypothesis.id}: {hypothesis.statement}\n  plan: {hypothesis.testing_plan}")
    try:
        verdict = runtime.context.analyst.test(tools, hypothesis)
    except UserError as refused:
        # a bad query in this hypothesis (a person's SQL, a model's) stops this branch only
        tools.note(hypothesis.id, f"test stopped: {refused.message}")
        phase(runtime, f"test {hypothesis.id}: left TESTING ({refused.message})")
        return {"tested": [hypothesis.id]}
    if verdict.status is None:
        if verdict.evidence:
            tools.record_evidence(hypothesis.id, verdict.evidence)
        tools.note(hypothesis.id, verdict.reason)
        phase(runtime, f"test {hypothesis.id}: left TESTING ({verdict.reason}; {budget.summary()})")
        return {"tested": [hypothesis.id]}
    try:
        tools.conclude(hypothesis.id, verdict.status, verdict.evidence, verdict.reason)
    except InvariantViolation as refused:
        # The analyst's verdict did not meet the evidence rules: keep what it found, decide nothing.
        if verdict.evidence:
            tools.record_evidence(hypothesis.id, verdict.evidence)
        tools.note(hypothesis.id, f"verdict refused by the rules: {refused}")
        phase(runtime, f"test {hypothesis.id}: verdict refused, left TESTING ({refused})")
    return {"tested": [hypothesis.id]}
