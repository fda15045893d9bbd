"""Report: summary statistics by SQL, issues, refuted hypotheses, strengths, next steps; then COMPLETED."""

from __future__ import annotations

from pathlib import Path

from langgraph.runtime import Runtime

from analyze_experiment.agent.core.insights.models import IssueStatus
from analyze_experiment.agent.core.report import (
    ChartData,
    Excerpt,
    ReportFacts,
    SummaryStats,
    render_charts,
    render_markdown,
)
from analyze_experiment.agent.core.traces.census import DURATION_BUCKET
from analyze_experiment.agent.core.traces.views import excerpt
from analyze_experiment.graphs.context import NodeContext
from analyze_experiment.graphs.nodes.common import tools_for
from analyze_experiment.graphs.progress import phase
from analyze_experiment.graphs.state import AnalysisState
from analyze_experiment.tools.protocols import AnalysisTools

TOTALS_SQL = (
    "SELECT count(*) AS total, count_if(state = 'OK') AS ok, count_if(state = 'ERROR') AS errors, "
    "avg(CASE WHEN state = 'OK' THEN execution_duration_ms END) AS avg_ok_ms, "
    "percentile(CASE WHEN state = 'OK' THEN execution_duration_ms END, 0.5) AS p50_ok_ms, "
    "percentile(CASE WHEN state = 'OK' THEN execution_duration_ms END, 0.95) AS p95_ok_ms FROM traces"
)
BY_DURATION_SQL = (
    f"SELECT {DURATION_BUCKET} AS bucket, count(*) AS traces, count_if(state = 'ERROR') AS errors, "
    "round(count_if(state = 'ERROR') / count(*), 4) AS error_rate FROM traces GROUP BY 1 "
    "ORDER BY min(execution_duration_ms)"
)
DURATIONS_SQL = "SELECT execution_duration_ms FROM traces WHERE state = 'OK'"
BY_HOUR_SQL = (
    "SELECT date_trunc('HOUR', request_time) AS hour, count(*) AS traces, count_if(state = 'ERROR') AS errors "
    "FROM traces GROUP BY 1 ORDER BY 1"
)
MAX_CHART_POINTS = 200_000
EXCERPT_CHARS = 300


def report(state: AnalysisState, runtime: Runtime[NodeContext]) -> AnalysisState:
    phase(runtime, "report: summary statistics, issues and charts")
    tools = tools_for(state, runtime)
    path = Path(state.get("report_path") or runtime.context.reports_dir / state["thread_id"] / "report.md")
    facts = gather(tools, runtime.context.analyst.name)
    facts.recommendations = runtime.context.analyst.recommend(facts)
    charts = render_charts(facts, path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(facts, charts), encoding="utf-8")
    tools.finish([str(path), *charts])
    phase(runtime, f"report written to {path}")
    return {"phase": "complete", "report": str(path)}


def gather(tools: AnalysisTools, analyst: str) -> ReportFacts:
    """Every number in the report comes from one of these queries."""
    totals = tools.execute_sql(TOTALS_SQL, record=False).records()[0]
    by_duration = tools.execute_sql(BY_DURATION_SQL, record=False)
    issues = tools.list_issues()
    hypotheses = {h.id: h for h in tools.list_hypotheses()}
    affected: dict[str, int] = {}
    excerpts: dict[str, Excerpt] = {}
    for issue in issues:
        source = hypotheses.get(issue.hypothesis_id)
        if source and source.selection:
            count = tools.execute_sql(
                f"SELECT count(DISTINCT trace_id) AS n FROM ({source.selection.query}) a", record=False
            )
            affected[issue.id] = int(count.rows[0][0])
        if issue.status is IssueStatus.REJECTED:
            continue
        for evidence in issue.evidence[:2]:
            read = tools.get_trace(evidence.trace_id)
            excerpts[evidence.trace_id] = Excerpt(
                trace_id=read.trace_id,
                request=excerpt(read.request, EXCERPT_CHARS),
                response=excerpt(read.response, EXCERPT_CHARS),
            )
    durations = tools.execute_sql(DURATIONS_SQL, record=False, max_rows=MAX_CHART_POINTS)
    by_hour = tools.execute_sql(BY_HOUR_SQL, record=False, max_rows=10_000)
    return ReportFacts(
        analysis=tools.analysis(),
        census=tools.census(),
        stats=SummaryStats(
            total=int(totals["total"]),
            ok=int(totals["ok"]),
            errors=int(totals["errors"]),
            avg_ok_ms=totals["avg_ok_ms"],
            p50_ok_ms=totals["p50_ok_ms"],
            p95_ok_ms=totals["p95_ok_ms"],
            error_rate_by_duration=by_duration.records(),
            queries={"totals and latency": TOTALS_SQL, "error rate by duration": BY_DURATION_SQL},
        ),
        hypotheses=list(hypotheses.values()),
        issues=issues,
        affected=affected,
        excerpts=excerpts,
        charts=ChartData(
            durations_ms=[float(r[0]) for r in durations.rows if r[0] is not None],
            errors_by_hour=[(str(r[0]), int(r[1]), int(r[2])) for r in by_hour.rows],
        ),
        ui_link=tools.ui_link(),
        tracking_uri=tools.tracking_uri(),
        analyst=analyst,
    )
