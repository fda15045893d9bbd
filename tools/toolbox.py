"""`AnalysisTools` over the insights library and trace access: everything an analysis may do to MLflow
state, bound to one analysis run.

Every trace a method returns is linked to the run before the caller sees it, every SQL query run for
a hypothesis lands in that hypothesis's lineage, and every write acts as `Actor.AGENT`: what a person
may do (reject, reopen, add their own hypotheses) lives in `tools.decisions`, which only the approval node is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from analyze_experiment.agent.core.insights.models import (
    Actor,
    Analysis,
    AnalysisStatus,
    Category,
    Census,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Issue,
    SegmentStatistics,
    Severity,
    SqlQuery,
)
from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.traces.engine import QueryResult, SqlEngine
from analyze_experiment.agent.core.traces.views import TraceSummary, TraceView
from analyze_experiment.tools.budget import Budget
from analyze_experiment.tools.events import EventKind, EventSink, ToolEvent, ignore
from analyze_experiment.tools.protocols import SQL_ROW_CAP, SQL_TIMEOUT_S


class Toolbox:
    def __init__(
        self,
        services: Services,
        experiment_id: str,
        run_id: str,
        table: Callable[[], SqlEngine],
        *,
        on_event: EventSink = ignore,
        budget: Budget | None = None,
        hypothesis_id: str | None = None,
    ) -> None:
        self._rt = services
        self.experiment_id = experiment_id
        self.run_id = run_id
        self._table = table
        self._emit_to = on_event
        self.budget = budget
        self.hypothesis_id = hypothesis_id

    # -- reading traces ---------------------------------------------------------------------------

    def search_traces(
        self, filter_string: str | None = None, max_results: int = 20, order_by: list[str] | None = None
    ) -> list[TraceSummary]:
        from analyze_experiment.agent.core.traces.views import summarize

        self._spend("search_traces")
        self._emit("search", f"search traces: {filter_string or 'all'} (max {max_results})")
        page = self._rt.traces.search(
            self.experiment_id,
            filter_string=filter_string,
            max_results=max_results,
            order_by=order_by,
            link_to_run=self.run_id,
        )
        return [summarize(trace.info) for trace in page.traces]

    def get_trace(self, trace_id: str) -> TraceView:
        from analyze_experiment.agent.core.traces.views import view

        self._spend("get_trace")
        self._emit("read", f"read trace {trace_id}")
        return view(self._rt.traces.get(trace_id, link_to_run=self.run_id))

    def execute_sql(
        self, query: str, *, record: bool = True, query_id: str | None = None, max_rows: int = SQL_ROW_CAP
    ) -> QueryResult:
        """Run checked SQL over the traces table; trace ids it returns are linked, and while testing a
        hypothesis (`record`), the query and a summary of its result join the hypothesis's lineage."""
        from analyze_experiment.agent.core.sql_runs import run_sql

        self._spend("execute_sql")
        self._emit("sql", " ".join(query.split()))
        outcome = run_sql(
            self._rt,
            lambda _experiment: self._table(),
            query,
            experiment_id=self.experiment_id,
            run_id=self.run_id,
            hypothesis_id=self.hypothesis_id if record else None,
            query_id=query_id,
            max_rows=max_rows,
            timeout=SQL_TIMEOUT_S,
        )
        return outcome.result

    def sql_engine(self) -> SqlEngine:
        """A read-only view of the table whose results link their trace ids, for SQL-driven detectors."""
        return _LinkingEngine(self)

    # -- the analysis -----------------------------------------------------------------------------

    def analysis(self) -> Analysis:
        return self._rt.insights.get_analysis(self.run_id)

    def describe_agent(self, description: str) -> Analysis:
        self._emit("write", "save the description of the traced agent")
        return self._rt.insights.update_analysis(self.run_id, description=description, actor=Actor.AGENT)

    def compute_census(self) -> Census:
        from analyze_experiment.agent.core.traces.census import compute_census

        census = self.census_or_none()
        if census is not None:
            return census  # a resumed run keeps the baseline it reasoned from
        self._emit("sql", "census: 14 baseline queries and the discovery engine's scan of every slice")
        outcomes = self.analysis().outcomes
        return self._rt.insights.save_census(self.run_id, compute_census(self._table(), outcomes=outcomes))

    def census_or_none(self) -> Census | None:
        from analyze_experiment.agent.core.errors import NotFoundError

        try:
            return self._rt.insights.get_census(self.run_id)
        except NotFoundError:
            return None

    def census(self) -> Census:
        return self._rt.insights.get_census(self.run_id)

    # -- hypotheses -------------------------------------------------------------------------------

    def create_hypothesis(
        self,
        statement: str,
        rationale: str,
        testing_plan: str,
        sql: str | None,
        category: Category | None,
        statistics: SegmentStatistics | None = None,
    ) -> Hypothesis:
        self._emit("write", f"hypothesis: {statement}")
        queries = [SqlQuery(id="Q1", query=sql, result_summary="the testing plan's first query")] if sql else []
        return self._rt.insights.create_hypothesis(
            self.run_id,
            statement=statement,
            rationale=rationale,
            testing_plan=testing_plan,
            sql_queries=queries,
            category=category,
            actor=Actor.AGENT,
            statistics=statistics,
        )

    def list_hypotheses(self, status: HypothesisStatus | None = None) -> list[Hypothesis]:
        return self._rt.insights.list_hypotheses(self.run_id, status)

    def get_hypothesis(self, hypothesis_id: str) -> Hypothesis:
        return self._rt.insights.get_hypothesis(self.run_id, hypothesis_id)

    def record_evidence(self, hypothesis_id: str, evidence: Sequence[Evidence]) -> Hypothesis:
        self._emit("write", f"{hypothesis_id}: {len(evidence)} evidence entr{'y' if len(evidence) == 1 else 'ies'}")
        return self._rt.insights.update_hypothesis(self.run_id, hypothesis_id, evidence=evidence, actor=Actor.AGENT)

    def note(self, hypothesis_id: str, text: str) -> Hypothesis:
        """Why a test stopped without a verdict, kept on the hypothesis for the report and the next run."""
        self._emit("note", f"{hypothesis_id}: {text}")
        return self._rt.insights.update_hypothesis(self.run_id, hypothesis_id, note=text[:2000], actor=Actor.AGENT)

    def conclude(
        self, hypothesis_id: str, status: HypothesisStatus, evidence: Sequence[Evidence], reason: str
    ) -> Hypothesis:
        self._emit("write", f"{hypothesis_id} -> {status.value}: {reason}")
        return self._rt.insights.update_hypothesis(
            self.run_id, hypothesis_id, status=status, evidence=evidence, reason=reason, actor=Actor.AGENT
        )

    # -- issues and the end of the run -------------------------------------------------------------

    def create_issue(
        self,
        hypothesis_id: str,
        title: str,
        description: str,
        severity: Severity,
        evidence: Sequence[Evidence],
        category: Category | None = None,
    ) -> Issue:
        self._emit("write", f"issue from {hypothesis_id}: {title} ({severity.value})")
        return self._rt.insights.create_issue(
            self.run_id,
            hypothesis_id=hypothesis_id,
            title=title,
            description=description,
            severity=severity,
            evidence=evidence,
            category=category,
            actor=Actor.AGENT,
        )

    def finish_issue(self, issue: Issue) -> Issue:
        """Creating an issue again is a no-op that completes what a crash may have cut short (its
        native MLflow issue and trace references)."""
        if issue.native_issue_id is not None:
            return issue
        return self._rt.insights.create_issue(
            self.run_id,
            hypothesis_id=issue.hypothesis_id,
            title=issue.title,
            description=issue.description,
            severity=issue.severity,
            evidence=issue.evidence,
            category=issue.category,
        )

    def list_issues(self) -> list[Issue]:
        return self._rt.insights.list_issues(self.run_id)

    def record_usage(self, phase: str, metrics: dict[str, float]) -> None:
        self._rt.insights.log_metrics(self.run_id, {f"llm.{phase}.{key}": value for key, value in metrics.items()})

    def redact(self, text: str) -> str:
        return self._rt.redact(text)

    def tracking_uri(self) -> str:
        return self._rt.settings.display_uri()

    def ui_link(self) -> str | None:
        return self._rt.run_link(self.run_id, self.experiment_id)

    def finish(self, files: Sequence[str]) -> Analysis:
        """Attach the report and mark the analysis COMPLETED (read-only from then on)."""
        self._emit("write", "attach the report and mark the analysis COMPLETED")
        insights = self._rt.insights
        analysis = insights.get_analysis(self.run_id)
        if analysis.status is AnalysisStatus.COMPLETED:
            return analysis  # a resumed run that had already finished
        insights.attach_files(self.run_id, files, "report")
        return insights.update_analysis(
            self.run_id, status=AnalysisStatus.COMPLETED, reason="report written", actor=Actor.AGENT
        )

    # -- internals --------------------------------------------------------------------------------

    def _spend(self, what: str) -> None:
        if self.budget is not None:
            self.budget.spend_call(what)

    def _emit(self, kind: EventKind, text: str) -> None:
        self._emit_to(ToolEvent(kind=kind, text=self._rt.redact(text), hypothesis_id=self.hypothesis_id))


class _LinkingEngine:
    """SqlEngine over the toolbox, so detectors' results are linked and their queries shown."""

    name = "toolbox"

    def __init__(self, toolbox: Toolbox) -> None:
        self._toolbox = toolbox
        self.row_cap = 100_000
        self.timeout_s = SQL_TIMEOUT_S

    def execute(self, sql: str) -> QueryResult:
        return self._toolbox.execute_sql(sql, record=False, max_rows=self.row_cap)
