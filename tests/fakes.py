"""A fake of the graph's protocols (`tools/protocols.py`), for unit tests of nodes, routes, the approval
node and the analysts without MLflow.

The documents live in memory, but the rules are the real ones: every status change and issue goes
through the insights library's invariants, as the toolbox's writes do. SQL runs on a real DuckDB table
(`DuckDBEngine`), and a trace read comes from that table's rows, so an analyst sees what it would see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyze_experiment.agent.core.approvals import ApprovalDecision, HypothesisEdit, IssueEdit, NewHypothesis
from analyze_experiment.agent.core.errors import NotFoundError
from analyze_experiment.agent.core.insights import invariants
from analyze_experiment.agent.core.insights.models import (
    Actor,
    Analysis,
    AnalysisStatus,
    Approval,
    Category,
    Census,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Issue,
    IssueStatus,
    SegmentStatistics,
    Severity,
    SqlQuery,
)
from analyze_experiment.agent.core.traces.census import compute_census
from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from analyze_experiment.agent.core.traces.engine import QueryResult, SqlEngine
from analyze_experiment.agent.core.traces.views import SpanView, TraceSummary, TraceView
from analyze_experiment.tools.budget import Budget
from analyze_experiment.tools.events import EventSink, ToolEvent, ignore
from analyze_experiment.tools.protocols import SQL_ROW_CAP, AnalysisTools


@dataclass
class Record:
    """One analysis run's documents, and what was done to them."""

    analysis: Analysis
    table: Path
    census: Census | None = None
    hypotheses: dict[str, Hypothesis] = field(default_factory=dict)
    issues: dict[str, Issue] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    person_writes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def engine(self) -> SqlEngine:
        return DuckDBEngine(self.table, row_cap=100_000)


class FakeTools:
    """`AnalysisTools` over a `Record`."""

    def __init__(
        self,
        record: Record,
        *,
        on_event: EventSink = ignore,
        budget: Budget | None = None,
        hypothesis_id: str | None = None,
    ) -> None:
        self._record = record
        self.experiment_id = record.analysis.experiment_id
        self.run_id = record.analysis.run_id
        self.budget = budget
        self.hypothesis_id = hypothesis_id
        self._emit = on_event

    # reading traces
    def search_traces(
        self, filter_string: str | None = None, max_results: int = 20, order_by: list[str] | None = None
    ) -> list[TraceSummary]:
        self._spend("search_traces")
        ids = self.execute_sql(f"SELECT trace_id FROM traces ORDER BY request_time LIMIT {max_results}", record=False)
        return [self._view(str(row[0])) for row in ids.rows]

    def get_trace(self, trace_id: str) -> TraceView:
        self._spend("get_trace")
        self._record.read.append(trace_id)
        return self._view(trace_id)

    def execute_sql(
        self, query: str, *, record: bool = True, query_id: str | None = None, max_rows: int = SQL_ROW_CAP
    ) -> QueryResult:
        self._spend("execute_sql")
        self._record.queries.append(query)
        self._emit(ToolEvent(kind="sql", text=query, hypothesis_id=self.hypothesis_id))
        result = self._record.engine().execute(query)
        return result.model_copy(update={"rows": result.rows[:max_rows], "rows_cut": len(result.rows) > max_rows})

    def sql_engine(self) -> SqlEngine:
        return self._record.engine()

    # the analysis
    def analysis(self) -> Analysis:
        return self._record.analysis

    def describe_agent(self, description: str) -> Analysis:
        self._record.analysis = self._record.analysis.model_copy(update={"description": description})
        return self._record.analysis

    def compute_census(self) -> Census:
        if self._record.census is None:
            self._record.census = compute_census(self.sql_engine(), outcomes=self._record.analysis.outcomes)
        return self._record.census

    def census_or_none(self) -> Census | None:
        return self._record.census

    def census(self) -> Census:
        if self._record.census is None:
            raise NotFoundError("no census yet")
        return self._record.census

    # hypotheses
    def create_hypothesis(
        self,
        statement: str,
        rationale: str,
        testing_plan: str,
        sql: str | None,
        category: Category | None,
        statistics: SegmentStatistics | None = None,
    ) -> Hypothesis:
        return self._record_hypothesis(statement, rationale, testing_plan, sql, category, statistics, Actor.AGENT)

    def list_hypotheses(self, status: HypothesisStatus | None = None) -> list[Hypothesis]:
        return [h for h in self._record.hypotheses.values() if status is None or h.status is status]

    def get_hypothesis(self, hypothesis_id: str) -> Hypothesis:
        return self._record.hypotheses[hypothesis_id]

    def record_evidence(self, hypothesis_id: str, evidence: Sequence[Evidence]) -> Hypothesis:
        old = self._record.hypotheses[hypothesis_id]
        return self._store(old.model_copy(update={"evidence": invariants.merge_evidence(old.evidence, list(evidence))}))

    def note(self, hypothesis_id: str, text: str) -> Hypothesis:
        old = self._record.hypotheses[hypothesis_id]
        return self._store(old.model_copy(update={"notes": [*old.notes, text]}))

    def conclude(
        self, hypothesis_id: str, status: HypothesisStatus, evidence: Sequence[Evidence], reason: str
    ) -> Hypothesis:
        old = self._record.hypotheses[hypothesis_id]
        invariants.require_workable(old, Actor.AGENT, reopening=False)
        invariants.require_status_evidence(old, status, list(evidence), Actor.AGENT, reason)
        merged = invariants.merge_evidence(old.evidence, list(evidence))
        return self._store(old.model_copy(update={"status": status, "evidence": merged}))

    # issues and the end of the run
    def create_issue(
        self,
        hypothesis_id: str,
        title: str,
        description: str,
        severity: Severity,
        evidence: Sequence[Evidence],
        category: Category | None = None,
    ) -> Issue:
        invariants.require_validated_source(self._record.hypotheses[hypothesis_id])
        invariants.require_title_length(title)
        invariants.require_evidence(list(evidence), "an issue")
        issue = Issue(
            id=f"I{len(self._record.issues) + 1}",
            title=title,
            description=description,
            severity=severity,
            hypothesis_id=hypothesis_id,
            evidence=list(evidence),
            category=category,
        )
        self._record.issues[issue.id] = issue
        return issue

    def finish_issue(self, issue: Issue) -> Issue:
        return issue

    def list_issues(self) -> list[Issue]:
        return list(self._record.issues.values())

    def record_usage(self, phase: str, metrics: dict[str, float]) -> None:
        pass

    def redact(self, text: str) -> str:
        return text

    def tracking_uri(self) -> str:
        return "fake://store"

    def ui_link(self) -> str | None:
        return None

    def finish(self, files: Sequence[str]) -> Analysis:
        self._record.files.extend(files)
        self._record.analysis = self._record.analysis.model_copy(update={"status": AnalysisStatus.COMPLETED})
        return self._record.analysis

    # internals
    def _record_hypothesis(
        self,
        statement: str,
        rationale: str,
        testing_plan: str,
        sql: str | None,
        category: Category | None,
        statistics: SegmentStatistics | None,
        author: Actor,
    ) -> Hypothesis:
        known = next((h for h in self._record.hypotheses.values() if h.statement == statement), None)
        if known is not None:
            return known  # as the library does: a known statement is not created twice
        queries = [SqlQuery(id="Q1", query=sql, result_summary="the plan's query")] if sql else []
        made = Hypothesis(
            id=f"H{len(self._record.hypotheses) + 1}",
            statement=statement,
            rationale=rationale,
            testing_plan=testing_plan,
            sql_queries=queries,
            category=category,
            statistics=statistics,
            author=author,
        )
        return self._store(made)

    def _store(self, hypothesis: Hypothesis) -> Hypothesis:
        self._record.hypotheses[hypothesis.id] = hypothesis
        return hypothesis

    def _spend(self, what: str) -> None:
        if self.budget is not None:
            self.budget.spend_call(what)

    def _view(self, trace_id: str) -> TraceView:
        sql = (
            "SELECT trace_id, tags['mlflow.traceName'] AS name, state, cast(request_time AS string) AS request_time, "
            "execution_duration_ms, request, response, spans FROM traces WHERE trace_id = '" + trace_id + "'"
        )
        rows = self._record.engine().execute(sql).records()
        if not rows:
            raise NotFoundError(f"no trace {trace_id}")
        row: dict[str, Any] = rows[0]
        spans = [
            SpanView(
                span_id=s["span_id"],
                parent_id=s["parent_id"],
                depth=0 if s["parent_id"] is None else 1,
                name=s["name"],
                span_type=None,
                start_offset_ms=0.0,
                duration_ms=None,
                status=s["status_code"],
                status_message=s["status_message"],
            )
            for s in row["spans"] or []
        ]
        return TraceView(
            trace_id=trace_id,
            name=row["name"],
            state=row["state"],
            request_time=row["request_time"],
            execution_duration_ms=row["execution_duration_ms"],
            request_preview=row["request"],
            response_preview=row["response"],
            request=row["request"],
            response=row["response"],
            tags={},
            metadata={},
            spans=spans,
            assessments=[],
        )


class FakeToolSource:
    """`ToolSource` over one `Record` per run id."""

    def __init__(self, table: Path, experiment_id: str = "1") -> None:
        self._table = table
        self._experiment_id = experiment_id
        self.records: dict[str, Record] = {}

    def open_analysis(
        self,
        experiment_id: str,
        thread_id: str,
        name: str,
        focus: list[str],
        on_event: EventSink = ignore,
        outcomes: dict[str, str] | None = None,
    ) -> Analysis:
        known = next((r.analysis for r in self.records.values() if r.analysis.thread_id == thread_id), None)
        if known is not None:
            return known
        analysis = Analysis(
            experiment_id=experiment_id,
            run_id=f"run-{len(self.records) + 1}",
            name=name,
            thread_id=thread_id,
            focus=focus,
            outcomes=outcomes or {},
        )
        self.records[analysis.run_id] = Record(analysis=analysis, table=self._table)
        return analysis

    def tools_for(
        self,
        experiment_id: str,
        run_id: str,
        *,
        on_event: EventSink = ignore,
        budget: Budget | None = None,
        hypothesis_id: str | None = None,
    ) -> AnalysisTools:
        return FakeTools(self.records[run_id], on_event=on_event, budget=budget, hypothesis_id=hypothesis_id)


class FakeDecisions:
    """`PersonDecisions` into a `Record`, noting which graph node wrote each one."""

    def __init__(self, record: Record, node: Callable[[], str]) -> None:
        self._record = record
        self._node = node
        self.approvals: list[Approval] = []

    def record(self, stage: str, decision: ApprovalDecision, *, description: str | None = None) -> None:
        self._wrote(f"approval {stage}")
        self.approvals.append(Approval(stage=stage, summary=decision.summary(), by=decision.by))
        if description:
            self._record.analysis = self._record.analysis.model_copy(update={"description": description})

    def reject_hypothesis(self, hypothesis_id: str, reason: str) -> None:
        self._wrote(f"reject {hypothesis_id}")
        old = self._record.hypotheses[hypothesis_id]
        invariants.require_status_evidence(old, HypothesisStatus.REJECTED, [], Actor.PERSON, reason)
        self._record.hypotheses[hypothesis_id] = old.model_copy(update={"status": HypothesisStatus.REJECTED})

    def edit_hypothesis(self, edit: HypothesisEdit) -> None:
        self._wrote(f"edit {edit.id}")
        old = self._record.hypotheses[edit.id]
        self._record.hypotheses[edit.id] = old.model_copy(update={"statement": edit.statement or old.statement})

    def add_hypothesis(self, new: NewHypothesis) -> str:
        self._wrote("add hypothesis")
        made = FakeTools(self._record)._record_hypothesis(
            new.statement, new.rationale or "a person's", "read traces", new.sql, new.category, None, Actor.PERSON
        )
        return made.id

    def reject_issue(self, issue_id: str, reason: str) -> None:
        self._wrote(f"reject {issue_id}")
        old = self._record.issues[issue_id]
        self._record.issues[issue_id] = old.model_copy(update={"status": IssueStatus.REJECTED})

    def edit_issue(self, edit: IssueEdit) -> None:
        self._wrote(f"edit {edit.id}")
        old = self._record.issues[edit.id]
        self._record.issues[edit.id] = old.model_copy(update={"title": edit.title or old.title})

    def _wrote(self, what: str) -> None:
        self._record.person_writes.append(f"{self._node()}: {what}")
