"""What graph code may ask of state: the protocols `tools/` implements and the graph's nodes receive.

Nodes, routes and analysts see only these. None of them exposes the services, the raw SQL engine or a
person's write: `AnalysisTools` acts as the agent on one analysis run (every trace it returns is linked,
every write is `Actor.AGENT`), and `PersonDecisions` is handed to the approval node alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from analyze_experiment.agent.core.approvals import ApprovalDecision, HypothesisEdit, IssueEdit, NewHypothesis
from analyze_experiment.agent.core.insights.models import (
    Analysis,
    Category,
    Census,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Issue,
    SegmentStatistics,
    Severity,
)
from analyze_experiment.agent.core.traces.engine import QueryResult, SqlEngine
from analyze_experiment.agent.core.traces.views import TraceSummary, TraceView
from analyze_experiment.tools.budget import Budget
from analyze_experiment.tools.events import EventSink

SQL_ROW_CAP = 500  # rows a node or analyst gets back from one query
SQL_TIMEOUT_S = 60.0


class AnalysisTools(Protocol):
    """Everything a node or an analyst may do, as the agent, to one analysis run."""

    experiment_id: str
    run_id: str
    budget: Budget | None
    hypothesis_id: str | None

    def search_traces(
        self, filter_string: str | None = None, max_results: int = 20, order_by: list[str] | None = None
    ) -> list[TraceSummary]: ...
    def get_trace(self, trace_id: str) -> TraceView: ...
    def execute_sql(
        self, query: str, *, record: bool = True, query_id: str | None = None, max_rows: int = SQL_ROW_CAP
    ) -> QueryResult: ...
    def sql_engine(self) -> SqlEngine: ...
    def analysis(self) -> Analysis: ...
    def describe_agent(self, description: str) -> Analysis: ...
    def compute_census(self) -> Census: ...
    def census_or_none(self) -> Census | None: ...
    def census(self) -> Census: ...
    def create_hypothesis(
        self,
        statement: str,
        rationale: str,
        testing_plan: str,
        sql: str | None,
        category: Category | None,
        statistics: SegmentStatistics | None = None,
    ) -> Hypothesis: ...
    def list_hypotheses(self, status: HypothesisStatus | None = None) -> list[Hypothesis]: ...
    def get_hypothesis(self, hypothesis_id: str) -> Hypothesis: ...
    def record_evidence(self, hypothesis_id: str, evidence: Sequence[Evidence]) -> Hypothesis: ...
    def note(self, hypothesis_id: str, text: str) -> Hypothesis: ...
    def conclude(
        self, hypothesis_id: str, status: HypothesisStatus, evidence: Sequence[Evidence], reason: str
    ) -> Hypothesis: ...
    def create_issue(
        self,
        hypothesis_id: str,
        title: str,
        description: str,
        severity: Severity,
        evidence: Sequence[Evidence],
        category: Category | None = None,
    ) -> Issue: ...
    def finish_issue(self, issue: Issue) -> Issue: ...
    def list_issues(self) -> list[Issue]: ...
    def record_usage(self, phase: str, metrics: dict[str, float]) -> None: ...
    def redact(self, text: str) -> str: ...
    def tracking_uri(self) -> str: ...
    def ui_link(self) -> str | None: ...
    def finish(self, files: Sequence[str]) -> Analysis: ...


class ToolSource(Protocol):
    """Opens a thread's analysis and hands out `AnalysisTools` bound to it."""

    def open_analysis(
        self,
        experiment_id: str,
        thread_id: str,
        name: str,
        focus: list[str],
        on_event: EventSink,
        outcomes: dict[str, str] | None = None,
    ) -> Analysis: ...
    def tools_for(
        self,
        experiment_id: str,
        run_id: str,
        *,
        on_event: EventSink,
        budget: Budget | None = None,
        hypothesis_id: str | None = None,
    ) -> AnalysisTools: ...


class PersonDecisions(Protocol):
    """What a person decided at an approval, written as `Actor.PERSON`: the approval node's alone."""

    def record(self, stage: str, decision: ApprovalDecision, *, description: str | None = None) -> None: ...
    def reject_hypothesis(self, hypothesis_id: str, reason: str) -> None: ...
    def edit_hypothesis(self, edit: HypothesisEdit) -> None: ...
    def add_hypothesis(self, new: NewHypothesis) -> str: ...
    def reject_issue(self, issue_id: str, reason: str) -> None: ...
    def edit_issue(self, edit: IssueEdit) -> None: ...
