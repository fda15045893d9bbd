"""The analysis report: markdown in the workflow's sections, plus PNG charts where a picture helps.

Rendering is pure: the report node gathers `ReportFacts` (every number from SQL) and this module only
lays them out. Text that came from traces is shown as quoted data, never as markdown.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from analyze_experiment.agent.core.insights.models import (
    Actor,
    Analysis,
    Category,
    Census,
    Hypothesis,
    HypothesisStatus,
    Issue,
    IssueStatus,
)

if TYPE_CHECKING:
    from datetime import datetime

    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure


class Excerpt(BaseModel):
    trace_id: str
    request: str | None = None
    response: str | None = None


class SummaryStats(BaseModel):
    total: int
    ok: int
    errors: int
    avg_ok_ms: float | None
    p50_ok_ms: float | None
    p95_ok_ms: float | None
    error_rate_by_duration: list[dict[str, Any]] = Field(default_factory=list)
    queries: dict[str, str] = Field(default_factory=dict, description="Section -> the SQL behind it.")


class ChartData(BaseModel):
    durations_ms: list[float] = Field(default_factory=list)
    errors_by_hour: list[tuple[str, int, int]] = Field(default_factory=list)


class ReportFacts(BaseModel):
    analysis: Analysis
    census: Census
    stats: SummaryStats
    hypotheses: list[Hypothesis]
    issues: list[Issue]
    affected: dict[str, int] = Field(default_factory=dict, description="Issue id -> traces its query selects.")
    excerpts: dict[str, Excerpt] = Field(default_factory=dict)
    charts: ChartData = Field(default_factory=ChartData)
    ui_link: str | None = None
    tracking_uri: str = ""
    recommendations: list[str] = Field(default_factory=list)
    analyst: str = "offline"

    @property
    def reported_issues(self) -> list[Issue]:
        """The issues a person let through; a rejected one is listed apart and never recommended."""
        return [i for i in self.issues if i.status is not IssueStatus.REJECTED]

    @property
    def rejected_issues(self) -> list[Issue]:
        return [i for i in self.issues if i.status is IssueStatus.REJECTED]


def render_markdown(facts: ReportFacts, chart_files: list[str]) -> str:
    sections = [
        _header(facts),
        _statistics(facts),
        _charts(chart_files),
        _issues(facts, Category.OPERATIONAL, "Operational issues"),
        _issues(facts, Category.QUALITY, "Quality issues"),
        _rejected_issues(facts),
        _hypotheses(facts),
        _strengths(facts),
        _how_we_looked(facts),
        _next_steps(facts),
    ]
    return "\n\n".join(s for s in sections if s).rstrip() + "\n"


def _header(f: ReportFacts) -> str:
    a = f.analysis
    validated = sum(h.status is HypothesisStatus.VALIDATED for h in f.hypotheses)
    rejected = sum(h.status is HypothesisStatus.REJECTED for h in f.hypotheses)
    lines = [
        f"# Analysis report: {_md(a.name)}",
        "",
        "## Run information",
        "",
        f"- Analysis run: `{a.run_id}` in experiment `{a.experiment_id}` ({_md(f.tracking_uri)})",
        _ui_line(f),
        f"- Agent thread: `{a.thread_id}`; analyst: {f.analyst}" if a.thread_id else f"- Analyst: {f.analyst}",
        f"- Hypotheses: {len(f.hypotheses)} ({validated} validated, {rejected} refuted or rejected, "
        f"{len(f.hypotheses) - validated - rejected} untested)",
        f"- Issues: {len(f.reported_issues)} reported ({len(f.rejected_issues)} rejected at approval)",
        "",
        "### The traced agent",
        "",
        _quote(a.description or "(no description)"),
    ]
    if a.focus:
        lines += ["", "Focus areas: " + "; ".join(_md(x) for x in a.focus)]
    return "\n".join(lines)


def _ui_line(f: ReportFacts) -> str:
    if f.ui_link:
        return f"- MLflow UI: {f.ui_link}"
    run, exp = f.analysis.run_id, f.analysis.experiment_id
    return (
        f"- MLflow UI: run `mlflow ui --backend-store-uri {shlex.quote(f.tracking_uri)}`, then open "
        f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{run}"
    )


def _statistics(f: ReportFacts) -> str:
    s = f.stats
    rate = s.ok / s.total if s.total else 0.0
    rows = "\n".join(
        f"| {_md(str(r.get('bucket')))} | {r.get('traces')} | {r.get('errors')} | {_pct(r.get('error_rate'))} |"
        for r in s.error_rate_by_duration
    )
    return "\n".join(
        [
            "## Summary statistics",
            "",
            "| measure | value |",
            "|---|---|",
            f"| traces | {s.total} |",
            f"| success rate | {rate:.1%} ({s.ok} of {s.total}) |",
            f"| errors | {s.errors} ({_pct(s.errors / s.total if s.total else 0)}) |",
            f"| average latency, OK traces | {_ms(s.avg_ok_ms)} |",
            f"| median latency, OK traces | {_ms(s.p50_ok_ms)} |",
            f"| p95 latency, OK traces | {_ms(s.p95_ok_ms)} |",
            "",
            "Error rate by duration:",
            "",
            "| duration | traces | errors | error rate |",
            "|---|---|---|---|",
            rows,
            "",
            "<details><summary>SQL behind these numbers</summary>",
            "",
            *[f"- {name}: `{sql}`" for name, sql in s.queries.items()],
            "",
            "</details>",
        ]
    )


def _charts(files: list[str]) -> str:
    if not files:
        return ""
    return "## Charts\n\n" + "\n\n".join(f"![{Path(p).stem}]({Path(p).name})" for p in files)


def _issues(f: ReportFacts, category: Category, title: str) -> str:
    chosen = [i for i in f.reported_issues if (i.category or Category.QUALITY) is category]
    if not chosen:
        return f"## {title}\n\nNone found."
    order = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
    blocks = [f"## {title}"]
    for issue in sorted(chosen, key=lambda i: (order[i.severity.value], i.id)):
        ids = [e.trace_id for e in issue.evidence]
        lines = [
            f"### {issue.id}: {_md(issue.title)} ({issue.severity.value})",
            "",
            f"- Validated hypothesis: {issue.hypothesis_id}",
            f"- Traces affected: {f.affected.get(issue.id, 'n/a')}; evidence traces ({len(ids)}): "
            + ", ".join(f"`{t}`" for t in ids),
            "",
            _quote(issue.description),
        ]
        for evidence in issue.evidence[:2]:
            ex = f.excerpts.get(evidence.trace_id)
            if ex:
                # what the trace shows of the finding first (a slow span's time, the failing step), then its text
                shown = (
                    f"what it shows: {evidence.rationale}\nrequest: {ex.request or '(empty)'}\n"
                    f"response: {ex.response or '(empty)'}"
                )
                lines += ["", f"`{evidence.trace_id}`:", "", _quote(shown)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _rejected_issues(f: ReportFacts) -> str:
    if not f.rejected_issues:
        return ""
    lines = ["## Rejected at approval", "", "Left out of the issues and recommendations above:", ""]
    for issue in f.rejected_issues:
        last = issue.history[-1] if issue.history else None
        why = f"{_md(last.reason)} (by {last.actor.value})" if last else "no reason recorded"
        lines.append(f"- {issue.id}: {_md(issue.title)} ({issue.severity.value}). {why}")
    return "\n".join(lines)


def _hypotheses(f: ReportFacts) -> str:
    """Every hypothesis with its outcome, whoever wrote it, so nothing tested disappears from the record."""
    if not f.hypotheses:
        return "## Hypotheses and outcomes\n\nNone."
    issue_of = {i.hypothesis_id: i for i in f.issues}
    lines = ["## Hypotheses and outcomes", ""]
    for h in f.hypotheses:
        author = "" if h.author is Actor.AGENT else f", added by {h.author.value}"
        lines.append(f"- {h.id}{author}: {_md(h.statement)}. Outcome: {_outcome(h, issue_of.get(h.id))}")
    return "\n".join(lines)


def _outcome(h: Hypothesis, issue: Issue | None) -> str:
    last = h.history[-1] if h.history else None
    why = _md(last.reason) if last else "no reason recorded"
    if h.status is HypothesisStatus.REJECTED:
        return f"refuted by {last.actor.value if last else 'unknown'}. Why: {why}"
    if h.status is HypothesisStatus.TESTING:
        stopped = f"; {_md(h.notes[-1])}" if h.notes else ""
        return f"not concluded ({len(h.evidence)} evidence entries so far{stopped})"
    if h.category is Category.STRENGTH:
        return f"validated as a strength. {why}"
    if issue is None:
        return f"validated, no issue of its own (its traces are an issue's above, or it has no SQL). {why}"
    rejected = " (rejected at approval)" if issue.status is IssueStatus.REJECTED else ""
    return f"validated, reported as {issue.id}{rejected}"


def _strengths(f: ReportFacts) -> str:
    strong = [h for h in f.hypotheses if h.status is HypothesisStatus.VALIDATED and h.category is Category.STRENGTH]
    lines = ["## Strengths", ""]
    lines += [f"- {_md(h.statement)} ({h.history[-1].reason if h.history else ''})" for h in strong]
    if not strong:
        lines.append("No strength was validated in this analysis.")
    return "\n".join(lines)


def _how_we_looked(f: ReportFacts) -> str:
    """What the discovery engine tested, so a reader can judge what a silence means."""
    from analyze_experiment.agent.core.discovery import DiscoveryReport

    stored = f.census.sections.get("discovery")
    if not stored:
        return ""
    report = DiscoveryReport.model_validate(stored)
    looked = report.looked
    problems = sum(1 for x in report.findings if x.kind == "problem")
    strengths = sum(1 for x in report.findings if x.kind == "strength")
    lines = [
        "## How we looked",
        "",
        f"The discovery engine compared every slice of the {looked.traces:,} traces with the rest, on each outcome "
        f"below: {len(looked.outcomes)} outcomes, {len(looked.features)} features, single values and pairs "
        f"({looked.pairs_tested:,} pairs). {looked.tests:,} tests (Fisher's exact test at small counts, chi-square "
        f"above) under Benjamini-Hochberg control at a false discovery rate of {looked.fdr:g}, with Benjamini and "
        f"Yekutieli's factor for dependent tests, over every test and again over each outcome's own; the "
        f"corrections count the {looked.counted:,} tests whose counts could ever pass them (a slice too "
        f"small or an outcome too rare to be significant spends none of the others' chances): "
        f"{looked.significant:,} passed; after requiring a risk ratio whose 95% interval lies above "
        f"{looked.min_ratio:g}, at least {looked.min_support} outcome traces in a slice, and removing slices "
        f"that explain the same traces, {problems} problem slice{'s' if problems != 1 else ''} and {strengths} "
        f"strength{'s' if strengths != 1 else ''} remained. {looked.queries} SQL queries, {looked.seconds:g} s.",
        "",
        "Outcomes: " + "; ".join(_md(o) for o in looked.outcomes) + ".",
        "",
        "Features: " + ", ".join(_md(x) for x in looked.features) + ".",
    ]
    return "\n".join(lines)


def _next_steps(f: ReportFacts) -> str:
    run, exp = f.analysis.run_id, f.analysis.experiment_id
    lines = ["## Recommendations and next steps", ""]
    lines += [f"- {_md(r)}" for r in f.recommendations] or ["- No issue needs action."]
    lines += [
        "",
        "Commands:",
        "",
        "```",
        f"analyze-experiment insights list-issues --run-id {run}",
        f"analyze-experiment insights get-hypothesis --run-id {run} --hypothesis-id H1",
        f"analyze-experiment traces search --experiment-id {exp} --run-id {run} --max-results 20",
        f'analyze-experiment traces execute-sql --experiment-id {exp} --sql "SELECT state, count(*) FROM traces GROUP BY 1"',
        "```",
    ]
    return "\n".join(lines)


def render_charts(facts: ReportFacts, out_dir: Path) -> list[str]:
    """PNG charts (latency distribution, errors over time, issues by affected traces)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = {
        "latency_distribution.png": latency_chart(facts),
        "errors_over_time.png": errors_over_time_chart(facts),
        "issues_by_affected_traces.png": issues_chart(facts),
    }
    return [_save(fig, out_dir / name) for name, fig in charts.items() if fig is not None]


def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


def _quote(text: str) -> str:
    """Untrusted or free text as a blockquote of plain lines: no headings, links or HTML take effect."""
    return "\n".join("> " + _md(line) if line.strip() else ">" for line in text.splitlines() or [""])


def _md(text: str) -> str:
    escaped = text.replace("\\", "\\\\")
    for ch in "`*_[]<>#|!":
        escaped = escaped.replace(ch, "\\" + ch)
    return escaped


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


# -- charts -----------------------------------------------------------------------------------------

MAX_TIME_TICKS = 8
ISSUE_TITLE_WIDTH = 44  # characters per label line; two lines leave the bars half of 10 inches
SEVERITY_COLOURS = {"CRITICAL": "#67000d", "HIGH": "#cb181d", "MEDIUM": "#fd8d3c", "LOW": "#9ecae1"}


def latency_chart(facts: ReportFacts) -> Figure | None:
    seconds = [d / 1000 for d in facts.charts.durations_ms]
    if not seconds:
        return None
    fig, ax = _figure(8, 3.4)
    log = _log_scaled(seconds)
    ax.hist(seconds, bins=_log_bins(seconds) if log else 40, color="#4878a8")
    if log:
        ax.set_xscale("log")
        _plain_numbers(ax.xaxis)
    for name, ms, style in (("median", facts.stats.p50_ok_ms, "--"), ("p95", facts.stats.p95_ok_ms, ":")):
        if ms is not None:
            ax.axvline(ms / 1000, color="#222222", linestyle=style, linewidth=1.2, label=f"{name} {ms / 1000:,.2f} s")
    _integer_ticks(ax.yaxis)
    ax.set_xlabel("latency (seconds, log scale)" if log else "latency (seconds)")
    ax.set_ylabel("OK traces")
    _title_and_legend(ax, f"Latency of OK traces ({len(seconds):,})")
    return fig


def errors_over_time_chart(facts: ReportFacts) -> Figure | None:
    rows = facts.charts.errors_by_hour
    if not rows:
        return None
    fig, ax = _figure(8, 3.6)
    hours = _parse_hours([h for h, _, _ in rows])
    if hours is None:
        _labelled_bars(ax, [h for h, _, _ in rows], [t for _, t, _ in rows], [e for _, _, e in rows])
    else:
        timed = sorted(zip(hours, rows, strict=True))  # offsets converted to UTC can change the order
        _hourly_bars(ax, [h for h, _ in timed], [r[1] for _, r in timed], [r[2] for _, r in timed])
    _integer_ticks(ax.yaxis)
    ax.set_ylabel("traces per hour")
    _title_and_legend(ax, "Traces and errors per hour")
    return fig


def issues_chart(facts: ReportFacts) -> Figure | None:
    # an issue whose query was not counted sorts last rather than posing as zero affected traces
    issues = sorted(facts.reported_issues, key=lambda i: -facts.affected.get(i.id, -1))
    if not issues:
        return None
    from matplotlib.patches import Patch

    fig, ax = _figure(10, 1.2 + 0.62 * len(issues))
    counts = [facts.affected.get(i.id) for i in issues]
    colours = [SEVERITY_COLOURS.get(i.severity.value, "#888888") for i in issues]
    bars = ax.barh(range(len(issues)), [c or 0 for c in counts], color=colours)
    ax.set_yticks(range(len(issues)), [_issue_label(i) for i in issues], fontsize=9)
    ax.invert_yaxis()
    ax.bar_label(bars, ["not counted" if c is None else f"{c:,}" for c in counts], padding=3, fontsize=9)
    ax.margins(x=0.15)
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("traces affected (selected by the issue's query)")
    shown = [s for s in SEVERITY_COLOURS if any(i.severity.value == s for i in issues)]
    ax.set_title("Issues by affected traces", loc="left")
    # beside the plot, not in it: with equal counts every bar reaches the right edge
    ax.legend(
        handles=[Patch(color=SEVERITY_COLOURS[s], label=s) for s in shown],
        title="severity",
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=8,
        title_fontsize=8,
    )
    return fig


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    # a Figure with its own Agg canvas: no pyplot state, no window, safe from any thread
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _title_and_legend(ax: Axes, title: str) -> None:
    """Title on the left and legend on the right, both above the plot, so neither hides a bar."""
    ax.set_title(title, loc="left")
    handles = ax.get_legend_handles_labels()[0]
    if handles:
        ax.legend(loc="lower right", bbox_to_anchor=(1, 1), ncols=len(handles), frameon=False, fontsize=9)


def _integer_ticks(axis: Axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _plain_numbers(axis: Axis) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _log_scaled(seconds: list[float]) -> bool:
    """A few very slow traces squeeze every other one into the first bin of a linear axis."""
    ordered = sorted(seconds)
    median = ordered[len(ordered) // 2]
    return ordered[0] > 0 and ordered[-1] > 20 * median


def _log_bins(seconds: list[float], count: int = 40) -> list[float]:
    low, high = min(seconds), max(seconds)
    return [low * (high / low) ** (k / count) for k in range(count + 1)]


def _parse_hours(values: list[str]) -> list[datetime] | None:
    """The engines return hours as naive UTC timestamps or ISO strings with an offset; None if any
    one is neither, and the chart falls back to the labels as given."""
    from datetime import UTC, datetime

    try:
        parsed = [datetime.fromisoformat(v) for v in values]
    except ValueError:
        return None
    return [p.astimezone(UTC).replace(tzinfo=None) if p.tzinfo else p for p in parsed]


def _hourly_bars(ax: Axes, hours: list[datetime], traces: list[int], errors: list[int]) -> None:
    """Bars at their real time, so hours without traffic show as gaps, on an axis of hours since the first."""
    from datetime import timedelta

    one = timedelta(hours=1)
    x = [(h - hours[0]) / one for h in hours]
    ax.bar(x, traces, width=0.9, align="edge", color="#9fbcd8", linewidth=0, label=f"all traces ({sum(traces):,})")
    ax.bar(x, errors, width=0.9, align="edge", color="#c44e52", linewidth=0, label=f"failed ({sum(errors):,})")
    ax.set_xlim(-0.5, x[-1] + 1.5)
    ticks, pattern = _time_ticks(hours[0], hours[-1] + one)
    ax.set_xticks([(t - hours[0]) / one for t in ticks], [t.strftime(pattern) for t in ticks], rotation=30, ha="right")
    ax.set_xlabel(f"hour starting, UTC ({hours[0]:%Y-%m-%d %H:%M} to {hours[-1]:%Y-%m-%d %H:%M})")


def _time_ticks(start: datetime, end: datetime) -> tuple[list[datetime], str]:
    """Fewer than MAX_TIME_TICKS whole hours within [start, end], on multiples of the step since
    midnight so labels read 00:00, 06:00, 12:00; for longer spans whole days, labelled by date alone."""
    import math
    from datetime import timedelta

    span = (end - start) / timedelta(hours=1)
    step = next((s for s in (1, 2, 3, 4, 6, 12) if span / s < MAX_TIME_TICKS), None)
    step = step or 24 * (math.floor(span / (24 * MAX_TIME_TICKS)) + 1)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    first = math.ceil((start - midnight) / timedelta(hours=step))
    ticks = [midnight + timedelta(hours=step * k) for k in range(first, first + MAX_TIME_TICKS + 1)]
    return [t for t in ticks if t <= end], "%b %d" if step >= 24 else "%b %d %H:%M"


def _labelled_bars(ax: Axes, labels: list[str], traces: list[int], errors: list[int]) -> None:
    import math

    positions = range(len(labels))
    ax.bar(positions, traces, color="#9fbcd8", label=f"all traces ({sum(traces):,})")
    ax.bar(positions, errors, color="#c44e52", label=f"failed ({sum(errors):,})")
    shown = positions[:: math.ceil(len(labels) / MAX_TIME_TICKS)]
    ax.set_xticks(shown, [labels[i] for i in shown], rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("hour")


def _issue_label(issue: Issue) -> str:
    import textwrap

    # "$" would start matplotlib's math mode in a title that came from a model or a trace
    title = issue.title.replace("$", r"\$")
    lines = textwrap.wrap(title, ISSUE_TITLE_WIDTH, max_lines=2, placeholder=" …")
    return "\n".join([f"{issue.id} · {issue.severity.value}", *lines])
