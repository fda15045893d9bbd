"""The approval node: pause with an `ApprovalRequest`, apply the `ApprovalDecision` at once.

It is the only node given the person's decisions (`AnalysisContext.decisions_for`); every other node
gets a `NodeContext` without them.

Everything before `interrupt()` runs again when the thread resumes, so it only reads; every write
happens after the decision arrives and is safe to repeat.
"""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from analyze_experiment.agent.core.approvals import ApprovalDecision, ApprovalItem, ApprovalRequest, Stage
from analyze_experiment.agent.core.insights.models import HypothesisStatus, IssueStatus
from analyze_experiment.graphs.context import AnalysisContext
from analyze_experiment.graphs.nodes.common import tools_for
from analyze_experiment.graphs.state import AnalysisState, Phase
from analyze_experiment.tools.protocols import AnalysisTools

QUESTIONS: dict[Stage, str] = {
    "description": "Is this what the traced agent does? Correct it and add focus areas if needed.",
    "hypotheses": "Which hypotheses should be tested? Reject, edit, or add your own.",
    "issues": "Which issues should be reported? Reject or edit them.",
}
NEXT_PHASE: dict[Stage, Phase] = {"description": "census", "hypotheses": "test", "issues": "report"}


def approve_description(state: AnalysisState, runtime: Runtime[AnalysisContext]) -> AnalysisState:
    return _approve("description", state, runtime)


def approve_hypotheses(state: AnalysisState, runtime: Runtime[AnalysisContext]) -> AnalysisState:
    return _approve("hypotheses", state, runtime)


def approve_issues(state: AnalysisState, runtime: Runtime[AnalysisContext]) -> AnalysisState:
    return _approve("issues", state, runtime)


def _approve(stage: Stage, state: AnalysisState, runtime: Runtime[AnalysisContext]) -> AnalysisState:
    tools = tools_for(state, runtime)
    request = build_request(stage, state, tools)
    decision = ApprovalDecision.model_validate(interrupt(request.model_dump(mode="json")))
    apply(stage, decision, tools, runtime)
    return {"phase": NEXT_PHASE[stage]}


def build_request(stage: Stage, state: AnalysisState, tools: AnalysisTools) -> ApprovalRequest:
    analysis = tools.analysis()
    items: list[ApprovalItem] = []
    if stage == "hypotheses":
        items = [
            ApprovalItem(id=h.id, title=h.statement, detail=f"{h.rationale}\nPlan: {h.testing_plan}")
            for h in tools.list_hypotheses(HypothesisStatus.TESTING)
        ]
    elif stage == "issues":
        items = [
            ApprovalItem(id=i.id, title=f"{i.title} ({i.severity.value})", detail=i.description, severity=i.severity)
            for i in tools.list_issues()
            if i.status is IssueStatus.OPEN
        ]
    return ApprovalRequest(
        thread_id=state["thread_id"],
        run_id=state["run_id"],
        experiment_id=state["experiment_id"],
        stage=stage,
        question=QUESTIONS[stage],
        description=analysis.description,
        focus=analysis.focus,
        items=items,
    )


def apply(stage: Stage, decision: ApprovalDecision, tools: AnalysisTools, runtime: Runtime[AnalysisContext]) -> None:
    people = runtime.context.decisions_for(tools.run_id)
    if stage == "hypotheses":
        open_ids = {h.id for h in tools.list_hypotheses(HypothesisStatus.TESTING)}
        for hypothesis_id, reason in decision.reject.items():
            if hypothesis_id in open_ids:  # already rejected when a crashed resume applies it again
                people.reject_hypothesis(hypothesis_id, reason)
        for edit in decision.hypothesis_edits:
            people.edit_hypothesis(edit)
        for new in decision.add_hypotheses:
            people.add_hypothesis(new)
    elif stage == "issues":
        open_ids = {i.id for i in tools.list_issues() if i.status is IssueStatus.OPEN}
        for issue_id, reason in decision.reject.items():
            if issue_id in open_ids:
                people.reject_issue(issue_id, reason)
        for issue_edit in decision.issue_edits:
            people.edit_issue(issue_edit)
    people.record(stage, decision, description=decision.description if stage == "description" else None)
