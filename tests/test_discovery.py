"""The discovery engine on traces tables built here, with names no simulator uses: it finds a planted
slice (a value, a pair, a burst, an identifier shape), selects exactly its traces, says nothing about a
table with nothing planted, and its statistics agree with scipy's own tests."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats as scipy_stats

from analyze_experiment.agent.core.discovery import DiscoveryReport, discover
from analyze_experiment.agent.core.discovery.catalog import Outcome, features, outcomes
from analyze_experiment.agent.core.discovery.profile import profile
from analyze_experiment.agent.core.discovery.scan import Cells, bursts
from analyze_experiment.agent.core.discovery.search import Params, Search, Segment, correct_within_outcomes, score
from analyze_experiment.agent.core.discovery.search import Test as Contrast  # not a pytest class
from analyze_experiment.agent.core.discovery.stats import (
    Tables,
    benjamini_hochberg,
    counted_in_correction,
    least_p_values,
    p_values,
    risk_ratio,
)
from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from analyze_experiment.agent.core.traces.engine import DerivingEngine, QueryResult
from analyze_experiment.agent.core.traces.table import SCHEMA

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

T0 = datetime(2026, 2, 2, 0, 0, 0)
Plant = Callable[[dict[str, Any], random.Random], bool]  # marks a trace as affected; returns whether it is


def _span(
    trace_id: str,
    name: str,
    kind: str,
    start: datetime,
    ms: float,
    *,
    failed: bool = False,
    inputs: Any = None,
    outputs: Any = None,
    error: str = "boom",
) -> dict[str, Any]:
    attributes = {"mlflow.spanType": json.dumps(kind)}
    if inputs is not None:
        attributes["mlflow.spanInputs"] = json.dumps(inputs)
    if outputs is not None:
        attributes["mlflow.spanOutputs"] = json.dumps(outputs)
    return {
        "name": name,
        "span_id": f"{trace_id}-{name}",
        "trace_id": trace_id,
        "parent_id": f"{trace_id}-root",
        "start_time": start,
        "end_time": start + timedelta(milliseconds=ms),
        "status_code": "ERROR" if failed else "OK",
        "status_message": error if failed else None,
        "attributes": list(attributes.items()),
        "events": [],
    }


def _judgement(trace_id: str, error: str | None, verdict: str = "yes") -> dict[str, Any]:
    """A judge's verdict on the trace, or the error it recorded instead."""
    return {
        "assessment_id": f"a-{trace_id}",
        "name": "verity",
        "source": {"source_type": "LLM_JUDGE", "source_id": "j"},
        "feedback": {"value": None if error else json.dumps(verdict), "error": error},
        "expectation": None,
        "rationale": None,
        "metadata": [],
        "span_id": None,
    }


def _table(
    tmp_path: Path,
    count: int,
    plant: Plant,
    seed: int = 1,
    prefixes: tuple[str, ...] = ("QX-", "#", ""),
    code_in_request: bool = True,
) -> tuple[DuckDBEngine, set[str]]:
    """`count` traces of an agent with a tool `quillon` and a model step `brevik`, tags `zone` and
    `tier`, an order code (prefix and number) passed to the tool and, unless told otherwise, in the
    request; `plant` may make a trace fail and marks it affected."""
    rng = random.Random(seed)
    rows, affected = [], set()
    for i in range(count):
        trace_id = f"tr-{i:05d}"
        code = rng.choice(prefixes) + str(rng.randrange(100, 999_999))
        row: dict[str, Any] = {
            "index": i,
            "zone": rng.choice(["north", "south", "east", "west"]),
            "tier": rng.choice(["gold", "silver", "bronze"]),
            "code": code,
            "at": T0 + timedelta(minutes=i * 7 * 24 * 60 / count),
            "failed": rng.random() < 0.02,
            "tool_ms": rng.uniform(50, 150),
            "slow": False,  # a plant may make the tool ten times slower
            "error": "boom",  # the failure's message
        }
        if plant(row, rng):
            row["failed"] = True
            affected.add(trace_id)
        start = row["at"]
        spans = [
            _span(
                trace_id,
                "quillon",
                "TOOL",
                start,
                row["tool_ms"] * (10 if row["slow"] else 1),
                failed=row["failed"],
                error=row["error"],
                inputs={"code": code},
                outputs=None if row["failed"] else {"rows": [1]},
            ),
            _span(trace_id, "brevik", "CHAT_MODEL", start, rng.uniform(300, 900), outputs={"content": "ok"}),
        ]
        rows.append(
            {
                "trace_id": trace_id,
                "client_request_id": None,
                "request_time": start,
                "state": "ERROR" if row["failed"] else "OK",
                "execution_duration_ms": int(rng.uniform(400, 1200)),
                "request": json.dumps({"ask": f"status of {code}" if code_in_request else "status"}),
                "response": None if row["failed"] else json.dumps({"text": "fine"}),
                "request_preview": None,
                "response_preview": None,
                "trace_metadata": [("owner", f"o-{i}")],
                "tags": [("zone", row["zone"]), ("tier", row["tier"]), ("mlflow.traceName", "agent")],
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}},
                "spans": [
                    {**_span(trace_id, "root", "AGENT", start, 1000), "parent_id": None, "span_id": f"{trace_id}-root"},
                    *spans,
                ],
                "assessments": [_judgement(trace_id, row["judged"], row.get("verdict", "yes"))]
                if "judged" in row
                else [],
            }
        )
    path = tmp_path / f"traces-{seed}.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("rows", pa.Table.from_pylist(rows, schema=SCHEMA))
        con.execute("CREATE TABLE traces AS SELECT * FROM rows")
    return DuckDBEngine(path, row_cap=100_000), affected


def _problems(report: DiscoveryReport) -> list[Any]:
    return [f for f in report.findings if f.kind == "problem"]


def _selected(engine: DuckDBEngine, sql: str) -> set[str]:
    return {str(r[0]) for r in engine.execute(sql).rows}


def test_one_bad_value_is_found_with_exactly_its_traces(tmp_path: Path) -> None:
    engine, affected = _table(tmp_path, 400, lambda row, rng: row["zone"] == "east" and rng.random() < 0.6)
    report = discover(engine)
    top = _problems(report)[0]
    assert "zone" in top.statistics.segment and "east" in top.statistics.segment
    selected = _selected(engine, top.affected_sql)
    assert affected <= selected and len(selected - affected) <= 3  # plus the east traces that failed anyway
    assert top.statistics.q_value <= 0.05 and top.statistics.ci_low > 1.5
    assert top.affected_count == len(selected)


def test_a_pair_is_found_when_neither_value_alone_explains_it(tmp_path: Path) -> None:
    engine, affected = _table(tmp_path, 600, lambda row, _rng: row["zone"] == "west" and row["tier"] == "gold")
    top = _problems(discover(engine))[0]
    assert "west" in top.statistics.segment and "gold" in top.statistics.segment
    assert _selected(engine, top.affected_sql) >= affected


def test_a_pair_is_found_from_as_few_outcome_traces_as_a_single_value(tmp_path: Path) -> None:
    """A pair needs the support a single value needs: its correction already counts every pair it
    was picked from, so asking twice the traces of it missed small, sharp pairs."""
    engine, affected = _table(
        tmp_path, 200, lambda row, rng: row["zone"] == "west" and row["tier"] == "gold" and rng.random() < 0.6, seed=2
    )
    assert 5 <= len(affected) < 10
    top = _problems(discover(engine))[0]
    assert "west" in top.statistics.segment and "gold" in top.statistics.segment
    assert _selected(engine, top.affected_sql) >= affected


def test_a_pair_is_found_where_nothing_outside_it_has_the_outcome(tmp_path: Path) -> None:
    """A judge errors on every trace of one pair of values and nowhere else. Each value alone is far
    worse than the rest too (none fail outside), yet inside each value the pair is worse than its other
    traces, so the pair is the finding."""
    erroring: set[str] = set()

    def plant(row: dict[str, Any], _rng: random.Random) -> bool:
        inside = row["zone"] == "west" and row["tier"] == "gold"
        row["judged"] = "judge timed out" if inside else None
        if inside:
            erroring.add(f"tr-{row['index']:05d}")
        return False

    engine, _ = _table(tmp_path, 200, plant, seed=2)
    problems = _problems(discover(engine))
    assert any(
        {"west", "gold"} <= set(f.statistics.segment.replace("`", " ").split())
        and _selected(engine, f.affected_sql) == erroring
        for f in problems
    ), [f.statement for f in problems]


def test_bursts_of_one_failure_as_strong_as_each_other_are_one_incident(tmp_path: Path) -> None:
    """Three 11-hour bursts, each failing 75% of the time, among 300 traces: one finding whose windows
    fit the bursts (a scan's edges, not a grid's cells around them)."""
    bursts: set[str] = set()

    def fail_in_bursts(row: dict[str, Any], rng: random.Random) -> bool:
        hour = (row["at"] - T0).total_seconds() / 3600
        if any(start <= hour < start + 11 for start in (13, 75, 131)) and rng.random() < 0.75:
            bursts.add(f"tr-{row['index']:05d}")
            return True
        return False

    engine, _ = _table(tmp_path, 300, fail_in_bursts, seed=3)
    problems = _problems(discover(engine))
    assert len(problems) == 1, [f.statement for f in problems]
    selected = _selected(engine, problems[0].affected_sql)
    assert len(bursts & selected) / len(bursts | selected) >= 0.7, problems[0].statement


def test_a_long_burst_is_found_whole_though_one_stretch_of_it_is_sharper(tmp_path: Path) -> None:
    """Failures for 50 hours, most of all in 12 of them: the stretch is significantly worse than the rest
    of the burst, but that rest is still far worse than the traffic outside it, so the finding is the
    burst, not the stretch."""

    def long_burst(row: dict[str, Any], rng: random.Random) -> bool:
        hour = (row["at"] - T0).total_seconds() / 3600
        return 50 <= hour < 100 and rng.random() < (0.9 if 60 <= hour < 72 else 0.45)

    engine, affected = _table(tmp_path, 1400, long_burst)
    top = _problems(discover(engine))[0]
    selected = _selected(engine, top.affected_sql)
    assert len(affected & selected) / len(affected | selected) >= 0.6, top.statement


def test_a_second_burst_is_found_once_the_first_no_longer_counts_as_the_rest(tmp_path: Path) -> None:
    """A strong burst and a weaker one of the same failure. Against a rest that holds the strong
    burst, the weaker one is not significant; once the strong one is explained, it is."""
    bursts: dict[str, set[str]] = {"strong": set(), "weak": set()}

    def two_bursts(row: dict[str, Any], rng: random.Random) -> bool:
        hour = (row["at"] - T0).total_seconds() / 3600
        burst = "strong" if 30 <= hour < 40 else "weak" if 110 <= hour < 124 else None
        if burst and rng.random() < (0.9 if burst == "strong" else 0.22):
            bursts[burst].add(f"tr-{row['index']:05d}")
            return True
        return False

    engine, _ = _table(tmp_path, 700, two_bursts)
    problems = _problems(discover(engine))
    found = [_selected(engine, f.affected_sql) for f in problems]
    for burst, traces in bursts.items():
        assert max(len(traces & s) / len(traces | s) for s in found) >= 0.5, burst
    for finding in problems:  # each finding's figures are what its own SQL counts (what the analyst re-counts)
        s = finding.statistics
        where = f" WHERE {s.population_sql}" if s.population_sql else ""
        counted = engine.execute(
            f"SELECT {s.segment_sql} AS inside, count(*) AS n, count_if({s.outcome_sql}) AS k "
            f"FROM traces{where} GROUP BY 1"
        ).records()
        by_side = {bool(r["inside"]): (r["n"], r["k"]) for r in counted}
        assert by_side[True] == (s.n, s.k) and by_side[False] == (s.n_rest, s.k_rest), s.segment
        assert s.p_value <= s.p_cutoff


class _Inlined:
    """An engine that cannot hold a derived table (as on Databricks): every count derives the rows again."""

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine, self.name = engine, engine.name
        self.row_cap, self.timeout_s = engine.row_cap, engine.timeout_s

    def execute(self, sql: str) -> QueryResult:
        return self.engine.execute(sql)


def test_an_engine_without_derived_tables_finds_the_same(tmp_path: Path) -> None:
    def pair_and_burst(row: dict[str, Any], rng: random.Random) -> bool:
        hour = (row["at"] - T0).total_seconds() / 3600
        return (row["zone"] == "west" and row["tier"] == "gold") or (60 <= hour < 70 and rng.random() < 0.7)

    engine, _ = _table(tmp_path, 700, pair_and_burst)
    held, inlined = discover(engine), discover(_Inlined(engine))
    assert isinstance(engine, DerivingEngine) and not isinstance(_Inlined(engine), DerivingEngine)
    assert len(_problems(held)) >= 2
    assert [f.model_dump() for f in inlined.findings] == [f.model_dump() for f in held.findings]
    assert inlined.looked.tests == held.looked.tests and held.looked.queries == inlined.looked.queries + 1
    for finding in held.findings:
        assert finding.affected_count == len(_selected(engine, finding.affected_sql)), finding.statement


def test_a_slice_whose_judged_answers_are_bad_counts_its_unjudged_ones_too(tmp_path: Path) -> None:
    """Two traces in five are judged. In gold most judged answers are bad, more than the share judged,
    so its unjudged answers are presumed bad as well: the finding counts what its SQL selects, from the
    derived table and without one."""

    def judged_sparsely(row: dict[str, Any], rng: random.Random) -> bool:
        if rng.random() < 0.4:
            row["judged"] = None
            row["verdict"] = "no" if rng.random() < (0.7 if row["tier"] == "gold" else 0.05) else "yes"
        return False

    engine, _ = _table(tmp_path, 900, judged_sparsely)
    held, inlined = discover(engine), discover(_Inlined(engine))
    found = [f for f in _problems(held) if "gold" in f.statistics.segment and "verity" in f.statement]
    assert found, [f.statement for f in _problems(held)]
    assert found[0].affected_count == len(_selected(engine, found[0].affected_sql)) > found[0].statistics.k
    assert [f.model_dump() for f in inlined.findings] == [f.model_dump() for f in held.findings]


def test_another_outcome_in_a_judged_slice_is_its_own_problem(tmp_path: Path) -> None:
    """In gold most judged answers are bad, so its unjudged ones are presumed bad too, and the tool is
    slow in a fifth of gold's traces, judged or not. The slow calls lie inside the judge's presumed
    traces but not inside the ones it judged bad: two problems of one slice, not one."""

    def judged_and_slow(row: dict[str, Any], rng: random.Random) -> bool:
        gold = row["tier"] == "gold"
        if rng.random() < 0.4:
            row["judged"] = None
            row["verdict"] = "no" if rng.random() < (0.7 if gold else 0.05) else "yes"
        row["slow"] = gold and rng.random() < 0.2
        return False

    engine, _ = _table(tmp_path, 900, judged_and_slow)
    found = [f for f in _problems(discover(engine)) if "gold" in f.statistics.segment]
    outcomes = {f.statistics.outcome_family for f in found}
    assert {"assessment_negative", "span_slow"} <= outcomes, [f.statement for f in found]


def test_a_strength_counts_what_its_sql_selects(tmp_path: Path) -> None:
    """Only one zone never sees the slow tool: a strength, whose count comes from the search's figures
    and must be what its SQL selects."""

    def slow_elsewhere(row: dict[str, Any], rng: random.Random) -> bool:
        row["slow"] = row["zone"] != "north" and rng.random() < 0.3
        return False

    engine, _ = _table(tmp_path, 600, slow_elsewhere)
    report = discover(engine)
    strengths = [f for f in report.findings if f.kind == "strength"]
    assert any("north" in f.statistics.segment for f in strengths)
    for finding in [f for f in report.findings if f.kind != "problem"]:
        assert finding.affected_count == len(_selected(engine, finding.affected_sql)), finding.statement


def test_one_recurring_error_stands_out_where_failures_alone_do_not(tmp_path: Path) -> None:
    """Failures in the background, each with its own message, and one tier where a third of the
    failures raise the same error (ids in it differ): the failure rate alone hardly moves there, the
    error's does."""
    words = ["disk", "socket", "quota", "parse", "lock", "cache", "token", "route"]

    def one_error(row: dict[str, Any], rng: random.Random) -> bool:
        row["failed"] = rng.random() < 0.12
        row["error"] = f"{rng.choice(words).title()}Error: {rng.choice(words)} {rng.choice(words)} {rng.choice(words)}"
        if row["failed"] and row["tier"] == "gold" and rng.random() < 0.4:
            row["error"] = f"QuotaExceeded: key {rng.randrange(10_000)} over its limit"
            return True
        return False

    engine, affected = _table(tmp_path, 900, one_error)
    problems = _problems(discover(engine))
    found = [f for f in problems if "QuotaExceeded: key 9 over its limit" in f.statement]
    assert found and "gold" in found[0].statistics.segment, [f.statement for f in problems]
    assert _selected(engine, found[0].affected_sql) == affected


def test_a_slowdown_stands_out_of_a_span_whose_durations_spread_wide(tmp_path: Path) -> None:
    """The tool's durations spread over an order of magnitude, so a third of its calls take three times
    its 25th percentile: that is its normal, and one zone where it is ten times slower must still stand
    out."""

    affected: set[str] = set()

    def slow_in_one_zone(row: dict[str, Any], rng: random.Random) -> bool:
        row["tool_ms"] = 100 * np.exp(rng.gauss(0, 1.3))
        row["slow"] = row["zone"] == "east" and rng.random() < 0.3
        if row["slow"]:
            affected.add(f"tr-{row['index']:05d}")
        return False

    engine, _ = _table(tmp_path, 500, slow_in_one_zone)
    found = [f for f in _problems(discover(engine)) if "quillon" in f.statement and "took over" in f.statement]
    assert found and "east" in found[0].statistics.segment, [f.statement for f in _problems(discover(engine))]
    selected = _selected(engine, found[0].affected_sql)
    assert len(selected & affected) >= 0.6 * len(selected)  # mostly slowed calls, not the span's own tail


def test_one_recurring_judge_error_stands_out(tmp_path: Path) -> None:
    """The judge errors on a fifth of the traces, each time with a message of its own, and on a tenth of
    gold traces with the same one besides: errors alone hardly rise there; that error, in that tier, is
    the finding."""
    words = ["parse", "schema", "token", "field", "quote", "brace"]

    def one_error(row: dict[str, Any], rng: random.Random) -> bool:
        row["judged"] = (
            f"judge failed: {rng.choice(words)} {rng.choice(words)} {rng.choice(words)}" if rng.random() < 0.2 else None
        )
        if row["tier"] == "gold" and rng.random() < 0.1:
            row["judged"] = f"judge failed: timed out after {rng.randrange(20, 40)} s"
            recurring.add(f"tr-{row['index']:05d}")
        return False

    recurring: set[str] = set()
    engine, _ = _table(tmp_path, 900, one_error)
    problems = _problems(discover(engine))
    found = [f for f in problems if "judge failed: timed out after 9 s" in f.statement]
    assert found and "gold" in found[0].statistics.segment, [f.statement for f in problems]
    assert _selected(engine, found[0].affected_sql) == recurring


def test_an_identifier_shape_is_found(tmp_path: Path) -> None:
    engine, affected = _table(tmp_path, 400, lambda row, _rng: row["code"].startswith("#"))
    top = _problems(discover(engine))[0]
    assert "#9" in top.statistics.segment  # the token's shape, or the request's digit-masked text: the same slice
    assert _selected(engine, top.affected_sql) >= affected


def test_an_identifier_with_dots_or_slashes_has_one_shape(tmp_path: Path) -> None:
    """`QX.123456` is one identifier (`aa.999999`), not the number after the dot, which plain numbers
    share: split at the dot, the slice could not be told apart."""
    engine, affected = _table(
        tmp_path,
        400,
        lambda row, _rng: row["code"].startswith("QX.") and len(row["code"]) == 9,
        prefixes=("QX.", "QX/", ""),
        code_in_request=False,
    )
    top = _problems(discover(engine))[0]
    assert "aa.999999" in top.statistics.segment, top.statement
    assert _selected(engine, top.affected_sql) >= affected


def test_nothing_planted_gives_no_problem(tmp_path: Path) -> None:
    for seed in (3, 4, 5):
        engine, _ = _table(tmp_path, 400, lambda _row, _rng: False, seed=seed)
        report = discover(engine)
        assert _problems(report) == [], [f.statement for f in _problems(report)]
        assert report.looked.tests > 10  # it did look


def test_a_slice_spared_because_the_failure_came_first_is_no_discovery(tmp_path: Path) -> None:
    """Each of three steps fails by chance and a failure ends the request: the traces that reached the
    last step fail far less often than the rest, which says nothing about the step. Only a worse rate
    is a problem there, so that slice is no significant test, and no chance finding rides on it."""
    rng, rows = random.Random(13), []
    for i in range(500):
        trace_id, start = f"tr-{i:05d}", T0 + timedelta(minutes=i * 13)
        spans = []
        for step in ("arvel", "bostra", "cendry"):
            failed = rng.random() < 0.05
            spans.append(
                _span(trace_id, step, "TOOL", start, rng.uniform(80, 120), failed=failed, outputs={"rows": [1]})
            )
            if failed:
                break
        failing = spans[-1]["status_code"] == "ERROR"
        rows.append(
            {
                "trace_id": trace_id,
                "client_request_id": None,
                "request_time": start,
                "state": "ERROR" if failing else "OK",
                "execution_duration_ms": 1000,
                "request": json.dumps({"ask": "x"}),
                "response": json.dumps({"text": "y"}),
                "request_preview": None,
                "response_preview": None,
                "trace_metadata": [],
                "tags": [("zone", rng.choice(["north", "south", "east", "west"]))],
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}},
                "spans": [
                    {**_span(trace_id, "root", "AGENT", start, 1000), "parent_id": None, "span_id": f"{trace_id}-root"},
                    *spans,
                ],
                "assessments": [],
            }
        )
    path = tmp_path / "steps.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("rows", pa.Table.from_pylist(rows, schema=SCHEMA))
        con.execute("CREATE TABLE traces AS SELECT * FROM rows")
    engine = DuckDBEngine(path, row_cap=100_000)
    reached = engine.execute(
        "SELECT exists(spans, s -> s.name = 'cendry') AS reached, avg(CASE WHEN state = 'ERROR' "
        "THEN 1.0 ELSE 0.0 END) AS rate FROM traces GROUP BY 1"
    ).records()
    rate = {r["reached"]: r["rate"] for r in reached}
    assert rate[True] < 0.1 and rate[False] == 1.0  # the spared slice is there, and stark
    report = discover(engine)
    assert report.looked.significant == 0 and _problems(report) == []


def _calls_table(tmp_path: Path, calls: dict[str, int], slow: dict[str, float], count: int = 900) -> DuckDBEngine:
    """A tool `tamsin` called `calls[zone]` times per trace, each call slow (20x its usual time) with
    chance `slow[zone]`: the zone decides how often the tool is called and how often one call is slow."""
    rng = random.Random(11)
    rows = []
    for i in range(count):
        trace_id, zone, start = f"tr-{i:05d}", rng.choice(sorted(calls)), T0 + timedelta(minutes=i * 11)
        # named per call for distinct span ids, then all called `tamsin`
        spans = [
            {
                **_span(
                    trace_id,
                    f"tamsin-{j}",
                    "TOOL",
                    start,
                    2000 if rng.random() < slow[zone] else rng.uniform(80, 120),
                    inputs={"n": j},
                    outputs={"rows": [1]},
                ),
                "name": "tamsin",
            }
            for j in range(calls[zone])
        ]
        rows.append(
            {
                "trace_id": trace_id,
                "client_request_id": None,
                "request_time": start,
                "state": "OK",
                "execution_duration_ms": 3000,
                "request": json.dumps({"ask": "x"}),
                "response": json.dumps({"text": "y"}),
                "request_preview": None,
                "response_preview": None,
                "trace_metadata": [],
                "tags": [("zone", zone)],
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}},
                "spans": [
                    {**_span(trace_id, "root", "AGENT", start, 3000), "parent_id": None, "span_id": f"{trace_id}-root"},
                    *spans,
                ],
                "assessments": [],
            }
        )
    tmp_path.mkdir()
    path = tmp_path / "calls.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("rows", pa.Table.from_pylist(rows, schema=SCHEMA))
        con.execute("CREATE TABLE traces AS SELECT * FROM rows")
    return DuckDBEngine(path, row_cap=100_000)


def test_more_calls_are_more_chances_not_a_cause(tmp_path: Path) -> None:
    """East calls the tool six times as often as the other zones. When each call is no slower, east has
    more slow traces, but no more than its calls explain: no finding. When each call is slower, it is one."""
    calls = {"north": 1, "east": 6, "south": 1, "west": 1}
    usual = {"north": 0.04, "south": 0.04, "west": 0.04}
    as_often = _calls_table(tmp_path / "same", calls, {**usual, "east": 0.04})
    slow_traces = as_often.execute(
        "SELECT tags['zone'] = 'east' AS east, avg(CASE WHEN exists(spans, s -> s.name = 'tamsin' AND "
        "unix_millis(s.end_time) - unix_millis(s.start_time) > 1000) THEN 1.0 ELSE 0.0 END) "
        "AS rate FROM traces GROUP BY 1"
    ).records()
    rate = {r["east"]: r["rate"] for r in slow_traces}
    assert rate[True] > 3 * rate[False]  # more slow traces in east, by its calls alone
    assert _slow_segments(as_often) == []
    slower = _calls_table(tmp_path / "slower", calls, {**usual, "east": 0.3})
    assert _slow_segments(slower) == ["tag `zone` is east"]


def _slow_segments(engine: DuckDBEngine) -> list[str]:
    return [f.statistics.segment for f in _problems(discover(engine)) if f.statistics.outcome_family == "span_slow"]


def test_a_slice_with_more_slow_traces_but_no_more_slow_calls_per_call_is_no_finding() -> None:
    """Measured on a negative control: traces with 10 or more spans had a slow call in 39 of 76 against
    23 of 103 (p = 1e-4), but 44 of their 238 calls were slow against 27 of 224: no more per call than
    chance allows. Both tests must reject; the slice's p-value is the per-call one."""
    slow = Outcome("o0", "span_slow", "span `x` took over 791 ms", "true", None, "", exposure="1", events="1")
    per_trace = Contrast(slow, Segment((("f", "a"),)), 76, 39, 103, 23)
    per_call = Contrast(slow, Segment((("f", "b"),)), 76, 39, 103, 23, calls=(44, 238, 27, 224))
    score([per_trace, per_call])
    assert per_trace.p < 1e-3 and per_trace.method != "binomial"
    assert per_call.p > 0.01 and per_call.method == "binomial"
    # one-sided, as a slice that is not a strength candidate is tested: that its calls go bad more often
    expected = scipy_stats.binomtest(44, 71, 238 / 462, alternative="greater").pvalue
    assert per_call.p == pytest.approx(expected, rel=0.05)


def test_a_slice_with_fewer_slow_traces_but_slower_calls_is_no_strength() -> None:
    """A strength's per-call test must point the way its trace-level test does: here 10 of 100 traces
    had a slow call against 30 of 100, but 20 of their 40 calls were slow against 30 of 300."""
    slow = Outcome("o0", "span_slow", "span `x` took over 791 ms", "true", None, "", exposure="1", events="1")
    mixed = Contrast(slow, Segment((("f", "a"),)), 100, 10, 100, 30, calls=(20, 40, 30, 300), both_sides=True)
    fewer = Contrast(slow, Segment((("f", "b"),)), 100, 10, 100, 30, calls=(5, 100, 60, 300), both_sides=True)
    score([mixed, fewer], dependent=False)
    assert mixed.high < 1 / 1.5 and not mixed.better(0.05, 1.5)  # fewer slow traces, but no strength
    assert fewer.better(0.05, 1.5)


def test_a_threshold_is_tested_two_sided_where_either_side_could_have_been(tmp_path: Path) -> None:
    """The worse side of a threshold is kept after counting both, so its p-value is two-sided; a value
    that can only be worse (a tag, for failures) is tested one-sided. Checked against scipy on traffic
    where failures fall at random, 8% of traces: below the shortest cut too few fail to be tested, and
    the side above it is still two-sided, since it was the side tested because of the counts."""
    engine, _ = _table(tmp_path, 400, lambda _row, rng: rng.random() < 0.08, seed=6)
    measured = profile(engine)
    search = Search(engine, outcomes(measured, 5, None), features(measured), Params())
    failed = [t for t in search.run().tests if t.outcome.family == "trace_failed" and len(t.segment.parts) == 1]
    kinds = [search.features[t.segment.parts[0][0]].kind for t in failed]
    checked = [(t, kind == "length") for t, kind in zip(failed, kinds, strict=True) if kind in {"length", "tag"}]
    assert {two_sided for _, two_sided in checked} == {True, False}
    for test, two_sided in checked:
        assert test.p == pytest.approx(_scipy_p(test, two_sided), rel=1e-6), (test.segment, two_sided)


def _scipy_p(test: Contrast, two_sided: bool) -> float:
    table = [[test.k, test.n - test.k], [test.k_rest, test.n_rest - test.k_rest]]
    if test.method == "fisher":  # two-sided as twice the smaller tail, as the engine doubles it
        greater = float(scipy_stats.fisher_exact(table, alternative="greater").pvalue)
        less = float(scipy_stats.fisher_exact(table, alternative="less").pvalue)
        return min(1.0, 2 * min(greater, less)) if two_sided else greater
    both = float(scipy_stats.chi2_contingency(table, correction=True).pvalue)
    return both if two_sided else both / 2 if test.rate > test.rest_rate else 1 - both / 2


def test_the_scan_finds_a_burst_in_uniform_traffic_no_more_often_than_its_p_values_say() -> None:
    """Outcomes spread evenly over time: the best stretch of each is significant at 0.05 about 5% of the
    time (the Gumbel tail is fitted to 199 shuffles), not the 100% its unadjusted test would claim."""
    rng = np.random.default_rng(3)
    first_p = []
    for trial in range(60):
        m = rng.integers(0, 4, 400)
        k = rng.binomial(m, 0.1)
        found = bursts(Cells.merged(m.tolist(), k.tolist(), list(range(401))), 5, f"trial-{trial}")
        first_p.append(found[0].p if found else 1.0)
    assert sum(p <= 0.05 for p in first_p) <= 8  # 3 expected; 8 or more has chance 0.006
    planted = rng.integers(0, 4, 400)
    hits = rng.binomial(planted, 0.1)
    hits[200:230] = planted[200:230]  # every trace of 30 buckets has the outcome
    burst = bursts(Cells.merged(planted.tolist(), hits.tolist(), list(range(401))), 5, "planted")[0]
    assert burst.p < 1e-4 and 190 <= burst.start_ms <= 205 and 225 <= burst.end_ms <= 240  # cells of ~5 buckets


def test_a_persons_outcome_is_searched_and_a_broken_one_refused(tmp_path: Path) -> None:
    from analyze_experiment.agent.core.errors import UserError

    engine, _ = _table(tmp_path, 400, lambda _row, _rng: False)
    report = discover(engine, {"gold asks": "tags['tier'] = 'gold' AND tags['zone'] = 'north'"})
    assert any("gold asks" in o for o in report.looked.outcomes)
    with pytest.raises(UserError, match="'broken'"):
        discover(engine, {"broken": "no_such_column > 1"})


def test_another_outcomes_discoveries_do_not_carry_a_chance_slice_through() -> None:
    """One strong problem is significant under 60 correlated slices. Beside them a chance slice of another
    outcome (6 of 10 against 14%) passes the run's correction, whose ranks they raise, but not its own
    outcome's."""
    strong, idle = (Outcome(key, "trace_failed", key, "true", None, "") for key in ("o0", "o1"))
    problem = [Contrast(strong, Segment((("f", str(i)),)), 50, 40, 250, 10) for i in range(60)]
    chance = Contrast(idle, Segment((("f", "x"),)), 10, 6, 290, 40)
    idle_rest = [Contrast(idle, Segment((("f", str(i)),)), 50, 8, 250, 38) for i in range(60)]
    run = [*problem, chance, *idle_rest]
    score(run)
    assert chance.q <= 0.05
    correct_within_outcomes(run)
    assert chance.q > 0.05 and all(t.q <= 0.05 for t in problem)


def test_tests_that_could_never_pass_do_not_dilute_the_correction() -> None:
    """A slice with 12 of its 40 traces failing against 20 of 260 is tested beside 3,000 slices of an
    outcome seen twice, which no count could make significant: the correction leaves those
    out of the correction, and the slice passes where a correction over every test would drown it."""
    failed, rare = (Outcome(key, "trace_failed", key, "true", None, "") for key in ("o0", "o1"))
    found = Contrast(failed, Segment((("f", "x"),)), 40, 12, 260, 20)
    hopeless = [Contrast(rare, Segment((("g", str(i)),)), 150, 1, 150, 1) for i in range(3000)]
    run = [found, *hopeless]
    score(run)
    assert found.q <= 0.05 and all(t.q == 1.0 for t in hopeless)
    assert benjamini_hochberg(np.array([t.p for t in run]))[0] > 0.05
    tables = Tables(
        k=np.array([0.0, 3.0]), n=np.array([10.0, 30.0]), k_rest=np.array([5.0, 3.0]), n_rest=np.array([90.0, 30.0])
    )
    least = least_p_values(tables, np.array([False, True]))
    all_inside = scipy_stats.fisher_exact([[5, 5], [0, 90]], alternative="greater").pvalue
    none_inside = scipy_stats.fisher_exact([[0, 30], [6, 24]], alternative="less").pvalue
    assert least == pytest.approx([all_inside, 2 * none_inside])
    assert counted_in_correction(np.array([1e-9, 0.02, 0.2]), 0.05).tolist() == [True, True, False]  # 0.05 / (1 + 1/2)


def test_statistics_agree_with_scipy() -> None:
    rng = np.random.default_rng(7)
    n = rng.integers(5, 400, 60).astype(float)
    k = np.floor(n * rng.uniform(0, 1, 60))
    n_rest = rng.integers(5, 400, 60).astype(float)
    k_rest = np.floor(n_rest * rng.uniform(0, 1, 60))
    tables = Tables(k=k, n=n, k_rest=k_rest, n_rest=n_rest)
    both_sides = rng.uniform(0, 1, 60) < 0.5
    p, method = p_values(tables, both_sides)
    for i in range(60):
        table = [[k[i], n[i] - k[i]], [k_rest[i], n_rest[i] - k_rest[i]]]
        if method[i] == "fisher":
            greater = scipy_stats.fisher_exact(table, alternative="greater").pvalue
            less = scipy_stats.fisher_exact(table, alternative="less").pvalue
            expected = min(1.0, 2 * min(greater, less)) if both_sides[i] else greater
        else:
            two_sided = scipy_stats.chi2_contingency(table, correction=True).pvalue
            higher = k[i] / n[i] > k_rest[i] / n_rest[i]
            expected = two_sided if both_sides[i] else two_sided / 2 if higher else 1 - two_sided / 2
        assert p[i] == pytest.approx(expected, rel=1e-6)
    assert not both_sides.all() and both_sides.any() and (method == "fisher").any() and (method == "chi2").any()
    raw = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205])
    expected = np.minimum.accumulate((raw * len(raw) / np.arange(1, len(raw) + 1))[::-1])[::-1]
    assert benjamini_hochberg(raw, dependent=False) == pytest.approx(np.minimum(expected, 1))
    harmonic = sum(1 / i for i in range(1, len(raw) + 1))  # Benjamini-Yekutieli, for dependent tests
    assert benjamini_hochberg(raw) == pytest.approx(np.minimum(expected * harmonic, 1))
    ratio, low, high = risk_ratio(
        Tables(k=np.array([30.0]), n=np.array([100.0]), k_rest=np.array([10.0]), n_rest=np.array([100.0]))
    )
    assert (
        ratio[0] == pytest.approx(3.0)
        and low[0] == pytest.approx(1.5508, abs=1e-4)
        and high[0] == pytest.approx(5.8033, abs=1e-4)
    )
