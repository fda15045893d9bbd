"""Rich rendering of the tool's objects for people, and JSON for scripts.

Trace content and model-written text are untrusted: they always go in as `Text`, never as markup,
so a trace that contains "[red]" or a control sequence prints as itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from analyze_experiment.agent.core.insights.models import Analysis, Census, Evidence, Hypothesis, Issue
from analyze_experiment.agent.core.traces.views import TraceSummary, TraceView
from analyze_experiment.agent.core.wording import count, number

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)
WIDE = 110  # columns from which tables show their less important columns


def emit_json(data: Any) -> None:
    def encode(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        raise TypeError(f"not serialisable: {type(value).__name__}")

    sys.stdout.write(json.dumps(data, default=encode, ensure_ascii=False, indent=2) + "\n")


def plain(value: Any) -> Text:
    """Untrusted text, shown literally with control characters made visible."""
    text = "" if value is None else str(value)
    return Text(text.translate(_CONTROL))


_CONTROL = {code: f"\\x{code:02x}" for code in range(32) if code not in (9, 10)} | {127: "\\x7f"}


def show(renderable: Any) -> None:
    out.print(renderable)


def show_wide(renderable: Any, width: int = 140) -> None:
    """Tables with many numeric columns: never squeezed below `width` when piped."""
    Console(highlight=False, width=max(out.width, width)).print(renderable)


def notice(message: str) -> None:
    err.print(Text(f"note: {message}", style="yellow"))


def analysis_panel(analysis: Analysis) -> Panel:
    body = Table.grid(padding=(0, 2))
    for label, value in (
        ("run id", analysis.run_id),
        ("experiment", analysis.experiment_id),
        ("status", analysis.status.value),
        ("version", analysis.version),
        ("updated", analysis.updated_at.isoformat(timespec="seconds")),
        ("description", analysis.description or "-"),
    ):
        body.add_row(Text(label, style="bold"), plain(value))
    return Panel(body, title=plain(analysis.name), title_align="left")


def analyses_table(analyses: Sequence[Analysis]) -> Table:
    table = Table("run id", "name", "status", "updated", title=f"{len(analyses)} analyses")
    for a in analyses:
        table.add_row(a.run_id, plain(a.name), a.status.value, a.updated_at.isoformat(timespec="seconds"))
    return table


def hypotheses_table(hypotheses: Sequence[Hypothesis]) -> Table:
    table = Table("id", "status", "statement", "evidence (+/-)", "queries", title=count(len(hypotheses), "hypothesis"))
    for h in hypotheses:
        table.add_row(
            h.id, _status(h.status.value), plain(h.statement), _evidence_counts(h.evidence), str(len(h.sql_queries))
        )
    return table


def hypothesis_panel(h: Hypothesis) -> Panel:
    parts: list[Any] = [
        _field("status", _status(h.status.value)),
        _field("rationale", plain(h.rationale)),
        _field("testing plan", plain(h.testing_plan)),
    ]
    if h.sql_queries:
        queries = Table("id", "query", "showed", box=None)
        for q in h.sql_queries:
            queries.add_row(q.id, plain(q.query), plain(q.result_summary or "-"))
        parts += [Text("SQL queries", style="bold"), queries]
    parts += _evidence_block(h.evidence)
    if h.history:
        parts.append(Text("history", style="bold"))
        for change in h.history:
            parts.append(
                plain(
                    f"  {change.at:%Y-%m-%d %H:%M} {change.from_status} -> {change.to_status} "
                    f"by {change.actor.value}: {change.reason}"
                )
            )
    return Panel(Group(*parts), title=Text(f"{h.id} (v{h.version}) ") + plain(h.statement), title_align="left")


def issues_table(issues: Iterable[tuple[str | None, Issue]]) -> Table:
    rows = list(issues)
    table = Table(
        "id", "severity", "status", "title", "hypothesis", "evidence", "run id", title=count(len(rows), "issue")
    )
    for run_id, i in rows:
        table.add_row(
            i.id,
            _severity(i.severity.value),
            i.status.value,
            plain(i.title),
            i.hypothesis_id,
            str(len(i.evidence)),
            run_id or "",
        )
    return table


def issue_panel(i: Issue) -> Panel:
    parts: list[Any] = [
        _field("severity", _severity(i.severity.value)),
        _field("status", Text(i.status.value)),
        _field("hypothesis", Text(i.hypothesis_id)),
        _field("native issue", Text(i.native_issue_id or "-")),
        _field("description", plain(i.description)),
        *_evidence_block(i.evidence),
    ]
    return Panel(Group(*parts), title=Text(f"{i.id} (v{i.version}) ") + plain(i.title), title_align="left")


def census_view(census: Census) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row(Text("traces", style="bold"), str(census.trace_count))
    head.add_row(Text("ok / error", style="bold"), f"{census.ok_count} / {census.error_count}")
    head.add_row(Text("error rate", style="bold"), f"{census.error_rate:.2%}")
    head.add_row(Text("latency ms", style="bold"), _pcts(census.latency_ms))
    parts: list[Any] = [Panel(head, title="baseline census", title_align="left")]
    ids = census.sections.get("query_ids", {})
    for key in ("spans", "tools", "error_buckets", "duration_buckets", "assessments", "token_usage", "trace_names"):
        rows = census.sections.get(key) or []
        if rows:
            parts.append(_records_table(f"{key.replace('_', ' ')} ({ids.get(key, '?')})", rows[:25]))
    for key in ("quality_markers", "long_tail", "latency_ok_ms", "latency_error_ms"):
        record = census.sections.get(key)
        if record:
            parts += _single_record_tables(key.replace("_", " "), ids.get(key, "?"), record)
    return Group(*parts)


def _single_record_tables(name: str, query_id: str, record: dict[str, Any]) -> list[Table]:
    """Counts and length percentiles side by side overflow 80 columns, so percentiles of a length get
    a table of their own whose title says the unit once."""
    lengths = {k.removesuffix("_chars"): v for k, v in record.items() if k.startswith("p") and k.endswith("_chars")}
    rest = {k: v for k, v in record.items() if k.removesuffix("_chars") not in lengths}
    tables = [_records_table(f"{name} ({query_id})", [rest], caption=_long_tail_caption(rest))] if rest else []
    if lengths:
        tables.append(_records_table(f"response length in characters ({query_id})", [lengths]))
    return tables


def _records_table(title: str, rows: list[dict[str, Any]], caption: str | None = None) -> Table:
    # spaced headers wrap onto two lines in a narrow terminal instead of being cut to "empty_respo…"
    table = Table(
        *[_header(key) for key in rows[0]],
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        min_width=len(title),
    )
    for row in rows:
        table.add_row(*[plain(_cell(key, value)) for key, value in row.items()])
    return table


def _header(key: str) -> str:
    name = key.replace("_", " ")
    return name.removesuffix(" chars") + " (chars)" if name.endswith(" chars") else name


def _long_tail_caption(record: dict[str, Any]) -> str | None:
    """The long tail as a sentence: its count only means something next to its denominator and cut."""
    if not {"long_responses", "ok_responses", "longer_than_chars"} <= record.keys():
        return None
    long, total, cut = record["long_responses"], record["ok_responses"], record["longer_than_chars"]
    if not total or cut is None:
        return "no OK responses to measure"
    median = record.get("median_chars")
    basis = f", {cut / median:g} times the median of {_num(median)}" if median else ""
    return f"{long:,} of {total:,} OK responses ({long / total:.1%}) are longer than {_num(cut)} characters{basis}"


def _cell(key: str, value: Any) -> Any:
    if not isinstance(value, float):
        return value
    if key.endswith("rate"):
        return f"{value:.1%}"
    if key.endswith("usd"):
        return f"${value:,.4f}"
    return _num(value)


def trace_summaries_table(summaries: Sequence[TraceSummary], linked_to: str | None) -> Table:
    title = count(len(summaries), "trace") + (f", linked to run {linked_to}" if linked_to else "")
    table = _id_table(title, "trace id", [s.trace_id for s in summaries])
    table.add_column("time (UTC)", no_wrap=True, min_width=11)
    table.add_column("state", no_wrap=True, min_width=5)
    table.add_column("ms", no_wrap=True, min_width=6, justify="right")
    # what gives way when the terminal is narrow: text columns, then their width; never the id
    kept = ("request", "response", "name")[: _fitting(out.width, (0, 90, WIDE))]
    texts = [name for name in ("name", "request", "response") if name in kept]
    ids = max((len(s.trace_id) for s in summaries), default=8)
    room = min(40, max(8, (out.width - ids - 22 - 3 * (3 + len(texts))) // len(texts)))
    for name in texts:
        table.add_column(name, no_wrap=True)
    for s in summaries:
        values = {"name": s.name, "request": s.request_preview, "response": s.response_preview}
        table.add_row(
            s.trace_id,
            s.request_time[5:16].replace("T", " "),
            _status(s.state),
            _num(s.execution_duration_ms),
            *[plain(_short(values[t], room)) for t in texts],
        )
    return table


def _fitting(width: int, floors: tuple[int, ...]) -> int:
    """How many of the optional columns fit: one per floor the width reaches."""
    return sum(width >= floor for floor in floors)


def _id_table(title: str, id_header: str, ids: Sequence[str], **options: Any) -> Table:
    """A table whose first column holds ids people copy into other commands: never wrapped or cut."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, **options)
    table.add_column(id_header, no_wrap=True, min_width=max((len(i) for i in ids), default=len(id_header)))
    return table


def trace_view(v: TraceView) -> Group:
    head = Table.grid(padding=(0, 2))
    for label, value in (
        ("trace", v.trace_id),
        ("name", v.name),
        ("state", v.state),
        ("time", v.request_time),
        ("duration ms", v.execution_duration_ms),
        ("request", v.request),
        ("response", v.response),
    ):
        head.add_row(Text(label, style="bold"), plain(value))
    tree = Tree("spans")
    nodes: dict[str, Tree] = {}
    for span in v.spans:
        line = Text.assemble(
            plain(span.name), f"  [{span.span_type or '-'}] ", _status(span.status), f"  {_num(span.duration_ms)} ms"
        )
        for error in span.errors:
            line.append("\n  ! ").append(plain(error))
        parent = nodes.get(span.parent_id or "", tree)
        nodes[span.span_id] = parent.add(line)
    if v.spans_cut:
        tree.add(Text(f"… {v.spans_cut:,} more spans not shown (`traces get --full` has them all)", style="dim"))
    parts: list[Any] = [head, tree]
    if v.assessments:
        table = Table("assessment", "source", "value", "rationale", title="assessments")
        for a in v.assessments:
            table.add_row(plain(a.name), plain(a.source_type), plain(a.error or a.value), plain(_short(a.rationale)))
        parts.append(table)
    return Group(*parts)


def _evidence_block(evidence: list[Evidence]) -> list[Any]:
    if not evidence:
        return [_field("evidence", Text("none"))]
    table = Table("trace", "supports", "rationale", box=None)
    table.columns[0].no_wrap = True
    for e in evidence:
        table.add_row(e.trace_id, "yes" if e.supports else "no", plain(e.rationale))
    return [Text("evidence", style="bold"), table]


def _field(label: str, value: Text) -> Text:
    return Text.assemble((f"{label}: ", "bold"), value)


def _evidence_counts(evidence: list[Evidence]) -> str:
    supporting = sum(1 for e in evidence if e.supports)
    return f"{supporting}/{len(evidence) - supporting}"


def _status(value: str) -> Text:
    style = {"OK": "green", "VALIDATED": "green", "ERROR": "red", "REJECTED": "red"}.get(value, "yellow")
    return Text(value, style=style)


def _severity(value: str) -> Text:
    return Text(value, style={"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow"}.get(value, ""))


def _pcts(values: dict[str, Any]) -> str:
    return "  ".join(f"{k} {_num(v)}" for k, v in values.items())


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _short(text: str | None, limit: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def diagnosis_view(report: Any) -> Group:
    grid = Table.grid(padding=(0, 2))
    store = f"{report.store_kind}  {report.tracking_uri}" + ("  (embedded default)" if report.default_store else "")
    grid.add_row(Text("store", style="bold"), plain(store))
    if report.experiment:
        grid.add_row(
            Text("experiment", style="bold"), plain(f"{report.experiment.experiment_id}  {report.experiment.name}")
        )
    if report.trace_count is not None:
        count = f"{report.trace_count:,}" + ("+" if report.trace_count_capped else "")
        grid.add_row(Text("traces", style="bold"), Text(count))
    parts: list[Any] = [Panel(grid, title="doctor", title_align="left")]
    if report.experiments:
        table = Table("experiment id", "name", title="experiments in this store")
        for e in report.experiments:
            table.add_row(e.experiment_id, plain(e.name))
        parts.append(table)
    if report.sample:
        parts.append(trace_summaries_table(report.sample, None))
    parts += [Text(f"hint: {hint}", style="yellow") for hint in report.hints]
    if not report.problem:
        parts.append(Text("ok: traces come back", style="green"))
    return Group(*parts)


def previews_view(previews: Sequence[Any]) -> Group:
    parts: list[Any] = []
    for p in previews:
        table = _id_table("", "trace", [e.trace_id for e in p.evidence])
        table.add_column("+/-", no_wrap=True, min_width=3)
        table.add_column("state", no_wrap=True, min_width=5)
        wide = out.width >= WIDE
        for name in ("request", "response", "rationale") if wide else ("rationale",):
            table.add_column(name, ratio=1)
        for e in p.evidence:
            texts = [plain(_short(e.request_excerpt, 50)), plain(_short(e.response_excerpt, 50))] if wide else []
            table.add_row(
                e.trace_id, "+" if e.supports else "-", plain(e.state or "?"), *texts, plain(_short(e.rationale, 120))
            )
        caption = f"{p.evidence_not_shown} more evidence traces not shown" if p.evidence_not_shown else None
        title = Text(f"{p.id} [{p.status}] ") + plain(p.title)
        parts.append(Panel(Group(table, Text(caption or "", style="dim")), title=title, title_align="left"))
    return Group(*parts) if parts else Group(Text("nothing to preview"))


def query_view(outcome: Any) -> Group:
    result = outcome.result
    table = Table(*result.columns, title=count(result.row_count, "row"))
    for row in result.rows:
        table.add_row(*[plain(_query_cell(v)) for v in row])
    parts: list[Any] = [table]
    if result.rows_cut:
        parts.append(Text(f"{result.rows_cut} more rows not shown (raise --max-rows or aggregate)", style="yellow"))
    if outcome.linked_traces:
        parts.append(Text(f"linked {outcome.linked_traces} traces to the analysis run", style="dim"))
    if outcome.recorded_as:
        parts.append(Text(f"recorded as {outcome.recorded_as}", style="dim"))
    return Group(*parts)


def _query_cell(value: Any) -> Any:
    """Floats rounded for reading (the JSON output keeps them exact); lists and maps as JSON."""
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return number(value) if isinstance(value, float) else value


def json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def progress_bar() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def eval_table(results: Sequence[Any]) -> Table:
    """Scores per eval case (`evals.scorers.Scores`)."""
    table = Table(
        title="analyst evals",
        caption="hyp: proposed/tested/validated/rejected; evid: evidence precision",
        padding=(0, 1),
    )
    table.add_column("case", no_wrap=True)
    for column in ("recall", "prec", "evid", "viol", "census", "hyp", "calls", "tokens", "cost $", "wall s"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in results:
        h = r.hypotheses
        table.add_row(
            plain(r.case),
            _score(r.issue_recall),
            _score(r.issue_precision),
            _score(r.evidence_precision),
            Text(str(len(r.violations)), style="red" if r.violations else "green"),
            "-" if r.census_exact is None else ("exact" if r.census_exact else "off"),
            f"{h.get('proposed', 0)}/{h.get('tested', 0)}/{h.get('validated', 0)}/{h.get('rejected', 0)}",
            str(r.llm_calls),
            str(r.tokens),
            "-" if r.cost_usd is None else f"{r.cost_usd:.4f}",
            f"{r.wall_s:.1f}",
        )
    return table


def family_table(summary: Any, seeds: str) -> Table:
    """Pooled scores of the random draws per outcome and cause family (`evals.summary.Summary`)."""
    table = Table(
        title=f"random draws ({summary.random_draws}, seeds: {seeds}) and controls ({summary.controls})",
        caption="recall over problems with power >= 0.8; weak: found/planted below that; "
        "prec: reported issues that match a planted problem, charged to the family they overlap",
        padding=(0, 1),
    )
    table.add_column("family", no_wrap=True)
    for column in ("found", "recall", "weak", "issues", "prec"):
        table.add_column(column, justify="right", no_wrap=True)
    for title, rows in (("outcome", summary.by_outcome), ("cause", summary.by_cause)):
        table.add_section()
        for row in rows:
            table.add_row(
                plain(f"{title}: {row.family}"),
                f"{row.strong_found}/{row.strong}",
                _score(row.recall),
                f"{row.weak_found}/{row.weak}",
                f"{row.matched_issues}/{row.issues}",
                _score(row.precision),
            )
    table.add_section()
    table.add_row(
        Text("pooled", style="bold"),
        f"{summary.strong_found}/{summary.strong}",
        _score(summary.recall),
        f"{summary.weak_found}/{summary.weak}",
        f"{summary.matched_issues}/{summary.issues}",
        _score(summary.precision),
    )
    if summary.controls:
        per = summary.false_issues_per_control
        table.add_row(
            Text("controls: false issues per control", style="bold"),
            "",
            "",
            "",
            str(sum(summary.control_issues.values())),
            Text(f"{per:.2f}", style="green" if per <= 0.1 else "red"),
        )
    return table


def _score(value: float | None) -> Text:
    if value is None:
        return Text("-")
    return Text(f"{value:.2f}", style="green" if value >= 0.8 else "red")
