"""What a person reads: the report's charts (time axis, whole counts, issue titles) and the census's
long-tail row (its count, cut and denominator, in characters)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from rich.console import Console

import analyze_experiment.agent.core.report
from analyze_experiment.agent.app.console import census_view
from analyze_experiment.agent.core.insights.models import Analysis, Census, Issue, Severity
from analyze_experiment.agent.core.report import ChartData, ReportFacts, SummaryStats, render_charts
from analyze_experiment.agent.core.traces.census import compute_census
from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from analyze_experiment.agent.core.traces.sync import TraceTableSync
from tests.conftest import Store

START = datetime(2026, 3, 2, 7)
TITLE_TEXT = "refund lookups time out for European customers when the carrier returns a malformed payload"


def _facts(**changes: Any) -> ReportFacts:
    facts = ReportFacts(
        analysis=Analysis(experiment_id="1", run_id="r", name="charts"),
        census=Census(trace_count=1, ok_count=1, error_count=0, error_rate=0),
        stats=SummaryStats(total=1, ok=1, errors=0, avg_ok_ms=1000, p50_ok_ms=1000, p95_ok_ms=1000),
        hypotheses=[],
        issues=[],
    )
    return facts.model_copy(update=changes)


@pytest.fixture
def drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """render_charts, returning each chart's figure as saved (laid out, PNG written) by file name."""
    saved: dict[str, Any] = {}
    save = analyze_experiment.agent.core.report._save

    def keep(fig: Any, path: Path) -> str:
        saved[path.name] = fig
        return save(fig, path)

    monkeypatch.setattr(analyze_experiment.agent.core.report, "_save", keep)

    def draw(facts: ReportFacts) -> dict[str, Any]:
        saved.clear()
        render_charts(facts, tmp_path / "charts")
        for fig in saved.values():
            fig.canvas.draw()
        return dict(saved)

    return draw


def _labels(ticks: list[Any]) -> list[str]:
    return [t.get_text() for t in ticks if t.get_text()]


def _whole(values: Any) -> bool:
    return all(float(v).is_integer() for v in values)


def _as_time(label: str) -> datetime:
    for pattern in ("%b %d %H:%M %Y", "%b %d %Y"):
        try:
            return datetime.strptime(f"{label} 2026", pattern)
        except ValueError:
            continue
    raise AssertionError(f"not a time: {label!r}")


def test_errors_over_time_has_a_time_axis_in_utc_and_whole_counts(drawn: Any) -> None:
    rng = random.Random(5)
    hours = sorted(rng.sample(range(21 * 24), 500))  # 500 hours spread over three weeks, with gaps
    rows = [(str(START + timedelta(hours=h)), rng.randrange(1, 4), rng.randrange(0, 2)) for h in hours]
    ax = drawn(_facts(charts=ChartData(errors_by_hour=rows)))["errors_over_time.png"].axes[0]
    labels = _labels(ax.get_xticklabels())
    assert 3 <= len(labels) <= 8, labels
    times = [_as_time(label) for label in labels]
    assert times == sorted(times) and START - timedelta(days=1) <= times[0] and times[-1] <= START + timedelta(days=22)
    assert "UTC" in ax.get_xlabel()
    assert _whole(ax.get_yticks())


def test_one_hour_of_traffic_is_labelled_with_its_hour(drawn: Any) -> None:
    rows = [("2026-03-02T09:00:00+02:00", 3, 1)]  # an engine that returns offsets: shown in UTC
    ax = drawn(_facts(charts=ChartData(errors_by_hour=rows)))["errors_over_time.png"].axes[0]
    assert _labels(ax.get_xticklabels())[0] == "Mar 02 07:00"
    assert "2026-03-02 07:00" in ax.get_xlabel() and "UTC" in ax.get_xlabel()
    assert _whole(ax.get_yticks())


def test_hours_an_engine_spells_oddly_still_get_labels(drawn: Any) -> None:
    rows = [(f"hour {h}", 2, h % 2) for h in range(30)]
    ax = drawn(_facts(charts=ChartData(errors_by_hour=rows)))["errors_over_time.png"].axes[0]
    labels = _labels(ax.get_xticklabels())
    assert labels[0] == "hour 0" and len(labels) <= 8


def _issues(count: int) -> list[Issue]:
    rng = random.Random(count)
    words = TITLE_TEXT.split()
    titles = [" ".join(rng.sample(words, len(words)) * 2)[:80].rsplit(" ", 1)[0] for _ in range(count)]
    severities = list(Severity)
    return [
        Issue(id=f"I{k + 1}", title=f"${k} {title}", description="d", severity=severities[k % 4], hypothesis_id="H1")
        for k, title in enumerate(titles)
    ]


def test_issue_bars_say_each_issue_title_and_severity_in_whole_words(drawn: Any) -> None:
    issues = _issues(8)
    affected = {i.id: 3 + k for k, i in enumerate(issues)}
    fig = drawn(_facts(issues=issues, affected=affected))["issues_by_affected_traces.png"]
    ax = fig.axes[0]
    labels = _labels(ax.get_yticklabels())
    assert len(labels) == 8
    for issue in issues:
        (label,) = [text for text in labels if text.split()[0] == issue.id]
        assert issue.severity.value in label
        shown = label.split("\n", 1)[1].replace("\\$", "$").replace("…", "").split()
        words = issue.title.split()
        assert shown == words[: len(shown)] and len(shown) >= 4, (shown, words)  # whole words, in order
    assert _whole(ax.get_xticks())
    renderer = fig.canvas.get_renderer()
    for text in ax.get_yticklabels():
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, text.get_text()  # no label cut off at the edge


@pytest.mark.slow
def test_latency_axes_say_what_they_count(drawn: Any) -> None:
    fig = drawn(_facts(charts=ChartData(durations_ms=[800.0, 900.0, 1000.0])))["latency_distribution.png"]
    ax = fig.axes[0]
    assert "seconds" in ax.get_xlabel() and "OK traces" in ax.get_ylabel()
    assert _whole(ax.get_yticks())
    slow = [1000.0] * 50 + [900_000.0]  # one trace of 15 minutes would squeeze the rest into one bin
    assert drawn(_facts(charts=ChartData(durations_ms=slow)))["latency_distribution.png"].axes[0].get_xscale() == "log"


@pytest.fixture
def table(store: Store, tmp_path: Path) -> Path:
    synced = TraceTableSync(store.client(), store.experiment_id, tmp_path / "traces.duckdb")
    synced.sync()
    return synced.path


def test_long_tail_counts_the_long_responses_against_their_cut(store: Store, table: Path) -> None:
    census = compute_census(DuckDBEngine(table), discovery=False)
    tail = census.sections["long_tail"]
    planted = set(store.traces.affected["verbose_answers"])  # type: ignore[attr-defined]
    with duckdb.connect(str(table), read_only=True) as con:
        answers = con.execute("SELECT trace_id, response FROM traces WHERE state = 'OK'").fetchall()
    assert planted and tail["long_responses"] == len(planted & {tid for tid, _ in answers})
    cut = tail["longer_than_chars"]
    assert cut is not None and tail["long_responses"] == sum(len(r) > cut for _, r in answers if r is not None)
    assert tail["ok_responses"] == sum(r is not None for _, r in answers)
    assert {"p50_chars", "p95_chars"} <= census.sections["quality_markers"].keys()


def test_census_table_at_80_columns_reads_the_long_tail_in_characters(table: Path) -> None:
    census = compute_census(DuckDBEngine(table), discovery=False)
    tail = census.sections["long_tail"]
    screen = Console(width=80, record=True, highlight=False)
    screen.print(census_view(census))
    text = " ".join(screen.export_text().split())
    assert f"{tail['long_responses']} of {tail['ok_responses']} OK responses" in text
    assert f"longer than {tail['longer_than_chars']:,.0f} characters" in text
    assert "response length in characters" in text and "…" not in text.split("quality markers")[1]
