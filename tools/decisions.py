"""`PersonDecisions` over the insights library: what a person decides at an approval, written at once.

Only the approval node holds one of these; no chat model is ever given it, so nothing written inside
a trace can reject, reopen or author anything as a person.
"""

from __future__ import annotations

from analyze_experiment.agent.core.approvals import ApprovalDecision, HypothesisEdit, IssueEdit, NewHypothesis
from analyze_experiment.agent.core.insights.models import Actor, Approval, HypothesisStatus, IssueStatus, SqlQuery
from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.sql_runs import next_query_id


class DecisionWriter:
    def __init__(self, services: Services, run_id: str) -> None:
        self._insights = services.insights
        self._run_id = run_id

    def record(self, stage: str, decision: ApprovalDecision, *, description: str | None = None) -> None:
        approval = Approval(stage=stage, summary=decision.summary(), by=decision.by)
        self._insights.record_approval(self._run_id, approval, description=description, focus=decision.focus)

    def reject_hypothesis(self, hypothesis_id: str, reason: str) -> None:
        self._insights.update_hypothesis(
            self._run_id,
            hypothesis_id,
            status=HypothesisStatus.REJECTED,
            reason=f"rejected at approval: {reason}",
            actor=Actor.PERSON,
        )

    def edit_hypothesis(self, edit: HypothesisEdit) -> None:
        selection = None
        if edit.sql:
            known = self._insights.get_hypothesis(self._run_id, edit.id).sql_queries
            # the same text keeps its id, so applying a decision again after a crash adds nothing
            same = next((q.id for q in known if q.query.strip() == edit.sql.strip()), None)
            qid = same or next_query_id([q.id for q in known])
            selection = SqlQuery(id=qid, query=edit.sql, result_summary="a person's query for the statement")
        self._insights.update_hypothesis(
            self._run_id,
            edit.id,
            statement=edit.statement,
            selection=selection,
            testing_plan=edit.testing_plan,
            actor=Actor.PERSON,
        )

    def add_hypothesis(self, new: NewHypothesis) -> str:
        queries = [SqlQuery(id="Q1", query=new.sql, result_summary="added by a person")] if new.sql else []
        created = self._insights.create_hypothesis(
            self._run_id,
            statement=new.statement,
            rationale=new.rationale or "added by a person at the hypotheses approval",
            testing_plan=new.testing_plan or "test with SQL over the traces table and read matching traces",
            sql_queries=queries,
            category=new.category,
            actor=Actor.PERSON,
        )
        return created.id

    def reject_issue(self, issue_id: str, reason: str) -> None:
        self._insights.update_issue(
            self._run_id,
            issue_id,
            status=IssueStatus.REJECTED,
            reason=f"rejected at approval: {reason}",
            actor=Actor.PERSON,
        )

    def edit_issue(self, edit: IssueEdit) -> None:
        self._insights.update_issue(
            self._run_id,
            edit.id,
            title=edit.title,
            severity=edit.severity,
            description=edit.description,
            actor=Actor.PERSON,
        )
