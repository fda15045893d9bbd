"""Finding problems from the traces table alone: generic detectors, each a question asked in SQL.

A detector knows nothing about who produced the traces. It looks for a shape (errors concentrated in
one span, errors the agent swallowed, one span slower in a newer app version, apologies, overlong or
empty answers, a tool path that draws negative feedback, a tool called again with the same input, a
burst of failures in one window, a path that is fast and judged correct, instructions aimed at an
analysing agent) and, when it finds one, returns the SQL that selects the affected traces. The
offline analyst turns findings into hypotheses; the numbers always come from the recorded SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from agent.traces.engine import SqlEngine

MIN_TRACES = 3  # fewer affected traces than this is anecdote, not a pattern


class Finding(BaseModel):
    kind: str
    statement: str
    rationale: str
    affected_sql: str
    affected: list[str]
    total: int
    strength: bool = False
    also: list[str] = []  # other detectors that selected exactly the same traces


def _rows(engine: SqlEngine, sql: str) -> list[list[Any]]:
    return engine.execute(sql).rows


def _ids(engine: SqlEngine, sql: str) -> list[str]:
    return sorted(str(row[0]) for row in _rows(engine, sql))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _finding(engine: SqlEngine, total: int, kind: str, statement: str, rationale: str, sql: str,
             strength: bool = False) -> Finding | None:  # fmt: skip
    affected = _ids(engine, sql)
    if len(affected) < MIN_TRACES:
        return None
    return Finding(kind=kind, statement=statement, rationale=rationale, affected_sql=sql, affected=affected,
                   total=total, strength=strength)  # fmt: skip


def _single(engine: SqlEngine, total: int, kind: str, statement: str, rationale: str, sql: str) -> list[Finding]:
    """Detectors that ask one question report at most one finding."""
    found = _finding(engine, total, kind, statement, rationale, sql)
    return [found] if found else []


def span_errors(engine: SqlEngine, total: int) -> list[Finding]:
    """Child spans that fail often, one finding per span; LLM-call failures are reported separately."""
    found = []
    rows = _rows(engine, "SELECT s.name, count(*) AS calls, count_if(s.status_code = 'ERROR') AS errors, "
                         "max(s.attributes['mlflow.spanType']) AS kind FROM traces LATERAL VIEW explode(spans) t AS s "
                         "WHERE s.parent_id IS NOT NULL GROUP BY s.name")  # fmt: skip
    for name, calls, errors, kind in rows:
        if errors < MIN_TRACES or errors / calls < 0.05:
            continue
        sql = (
            f"SELECT trace_id FROM traces WHERE exists(spans, s -> s.name = {_quote(name)} AND s.status_code = 'ERROR')"
        )
        label = "LLM call" if kind == '"CHAT_MODEL"' else "span"
        found.append(_finding(engine, total, "span_errors", f"{name} fails in {errors} of {calls} calls",
                              f"{label} {name} errors in {errors / calls:.0%} of its calls", sql))  # fmt: skip
    return [f for f in found if f]


def swallowed_errors(engine: SqlEngine, total: int) -> list[Finding]:
    """Traces that report OK although a span inside them failed."""
    sql = ("SELECT trace_id FROM traces WHERE state = 'OK' AND exists(spans, s -> s.status_code = 'ERROR' "
           "AND s.parent_id IS NOT NULL)")  # fmt: skip
    return _single(
        engine,
        total,
        "swallowed_errors",
        "failed tool calls end in OK traces with empty answers",
        "traces report success while a span inside them failed",
        sql,
    )


def empty_answers(engine: SqlEngine, total: int) -> list[Finding]:
    sql = ("SELECT trace_id FROM traces WHERE state = 'OK' AND (response IS NULL OR trim(response) IN "
           "('', '\"\"', 'null', '{}') OR response rlike '^[{]\"[^\"]+\": \"\"[}]$')")  # fmt: skip
    return _single(
        engine,
        total,
        "empty_answers",
        "successful traces return empty answers",
        "the census counts empty responses among OK traces",
        sql,
    )


def version_regressions(engine: SqlEngine, total: int) -> list[Finding]:
    """A span whose median duration grew several-fold from one app_version to the next."""
    rows = _rows(engine, "SELECT s.name, tags['app_version'] AS v, percentile(unix_millis(s.end_time) - "
                         "unix_millis(s.start_time), 0.5) AS p50 FROM traces LATERAL VIEW explode(spans) t AS s "
                         "WHERE tags['app_version'] IS NOT NULL AND s.parent_id IS NOT NULL GROUP BY 1, 2")  # fmt: skip
    by_span: dict[str, dict[str, float]] = {}
    for name, version, p50 in rows:
        by_span.setdefault(name, {})[version] = p50
    found = []
    for name, versions in by_span.items():
        if len(versions) < 2:
            continue
        ordered = sorted(versions)
        old, new = versions[ordered[-2]], versions[ordered[-1]]
        if old and new / old >= 3 and new - old >= 100:
            cut = (old + new) / 2
            sql = (f"SELECT trace_id FROM traces LATERAL VIEW explode(spans) t AS s WHERE s.name = {_quote(name)} "
                   f"AND tags['app_version'] = {_quote(ordered[-1])} "
                   f"AND unix_millis(s.end_time) - unix_millis(s.start_time) > {cut:.0f}")  # fmt: skip
            found.append(_finding(engine, total, "latency_regression",
                                  f"{name} slowed from {old:.0f} ms to {new:.0f} ms in app_version {ordered[-1]}",
                                  f"median {name} duration by app_version: {ordered[-2]} {old:.0f} ms, "
                                  f"{ordered[-1]} {new:.0f} ms", sql))  # fmt: skip
    return [f for f in found if f]


def apologies(engine: SqlEngine, total: int) -> list[Finding]:
    sql = "SELECT trace_id FROM traces WHERE state = 'OK' AND response rlike '(?i)(i.?m sorry|i apologi[sz]e|not sure|i don.?t know)'"
    return _single(
        engine,
        total,
        "apologies",
        "answers apologise or admit not knowing",
        "the census quality markers count apologies and uncertainty",
        sql,
    )


def overlong_answers(engine: SqlEngine, total: int) -> list[Finding]:
    """Answers far longer than the typical answer (over 4x the median and 1,000 characters)."""
    median = _rows(engine, "SELECT percentile(length(response), 0.5) FROM traces WHERE state = 'OK'")[0][0] or 0
    cut = max(1000, 4 * median)
    sql = f"SELECT trace_id FROM traces WHERE state = 'OK' AND length(response) > {cut:.0f}"
    return _single(
        engine,
        total,
        "overlong_answers",
        f"some answers run past {cut:.0f} characters",
        f"the median answer is {median:.0f} characters",
        sql,
    )


def negative_feedback_paths(engine: SqlEngine, total: int) -> list[Finding]:
    """A span whose presence goes with a much higher share of negative human feedback."""
    rows = _rows(engine, "WITH fb AS (SELECT trace_id, spans, exists(assessments, a -> a.source.source_type = 'HUMAN' "
                         "AND a.feedback.value = 'false') AS bad FROM traces WHERE exists(assessments, a -> "
                         "a.source.source_type = 'HUMAN' AND a.feedback.value IN ('true', 'false'))) "
                         "SELECT s.name, count(DISTINCT trace_id) AS n, count(DISTINCT CASE WHEN bad THEN trace_id END) AS neg "
                         "FROM fb LATERAL VIEW explode(spans) t AS s WHERE s.parent_id IS NOT NULL GROUP BY s.name")  # fmt: skip
    overall = _rows(engine, "SELECT count_if(exists(assessments, a -> a.source.source_type = 'HUMAN' AND a.feedback.value = 'false')), "
                            "count_if(exists(assessments, a -> a.source.source_type = 'HUMAN' AND a.feedback.value IN ('true', 'false'))) FROM traces")[0]  # fmt: skip
    found = []
    for name, n, neg in rows:
        # Contrast with the rated traces that do not go through the span (a high base rate of negative
        # feedback must not hide a path where every rating is negative).
        rest_rated, rest_neg = overall[1] - n, overall[0] - neg
        if n < 5 or neg < MIN_TRACES or rest_rated < 5:
            continue  # too few ratings, or the span is (nearly) everywhere: it says nothing about a path
        rest_rate = rest_neg / rest_rated
        if neg / n >= 0.5 and neg / n >= 2 * rest_rate:
            sql = (f"SELECT trace_id FROM traces WHERE exists(spans, s -> s.name = {_quote(name)}) AND "
                   "exists(assessments, a -> a.source.source_type = 'HUMAN' AND a.feedback.value = 'false')")  # fmt: skip
            found.append(_finding(engine, total, "negative_feedback_path",
                                  f"users rate answers that go through {name} negatively",
                                  f"{neg} of {n} rated traces through {name} are negative against {rest_neg} of "
                                  f"{rest_rated} without it", sql))  # fmt: skip
    return [f for f in found if f]


def retry_loops(engine: SqlEngine, total: int) -> list[Finding]:
    """The same span called three or more times with identical inputs in one trace."""
    rows = _rows(engine, "SELECT s.name, count(DISTINCT trace_id) FROM traces LATERAL VIEW explode(spans) t AS s "
                         "WHERE s.parent_id IS NOT NULL GROUP BY trace_id, s.name, s.attributes['mlflow.spanInputs'] "
                         "HAVING count(*) >= 3")  # fmt: skip
    found = []
    for name in sorted({row[0] for row in rows}):
        sql = (f"SELECT DISTINCT trace_id FROM traces LATERAL VIEW explode(spans) t AS s WHERE s.name = {_quote(name)} "
               "GROUP BY trace_id, s.attributes['mlflow.spanInputs'] HAVING count(*) >= 3")  # fmt: skip
        found.append(_finding(engine, total, "retry_loop", f"{name} is retried with the same input",
                              f"traces call {name} three or more times with identical inputs", sql))  # fmt: skip
    return [f for f in found if f]


def injections(engine: SqlEngine, total: int) -> list[Finding]:
    """Text addressed to an analysing agent inside traces: reported, never obeyed."""
    sql = ("SELECT trace_id FROM traces WHERE request rlike '(?i)(ignore (all )?previous instructions|to any ai)' "
           "OR exists(spans, s -> s.attributes['mlflow.spanOutputs'] rlike '(?i)ignore (all )?previous instructions')")  # fmt: skip
    return _single(
        engine,
        total,
        "prompt_injection",
        "traces carry instructions aimed at AI agents",
        "request or tool-output text tells an analysing agent what to conclude",
        sql,
    )


def fast_and_correct(engine: SqlEngine, total: int) -> list[Finding]:
    """A request that is answered much faster than usual and always judged correct: a strength."""
    overall = _rows(engine, "SELECT percentile(execution_duration_ms, 0.5) FROM traces WHERE state = 'OK'")[0][0] or 0
    rows = _rows(engine, "SELECT request, count(*), percentile(execution_duration_ms, 0.5), "
                         "count_if(exists(assessments, a -> a.source.source_type = 'LLM_JUDGE' AND a.feedback.value = '\"yes\"')) "
                         "FROM traces WHERE state = 'OK' GROUP BY request HAVING count(*) >= 5")  # fmt: skip
    found = []
    for request, n, p50, judged in rows:
        if p50 < overall / 3 and judged >= 0.8 * n:
            sql = f"SELECT trace_id FROM traces WHERE state = 'OK' AND request = {_quote(request)}"
            found.append(_finding(engine, total, "strength", f"{request[:60]} is answered fast and correctly",
                                  f"median {p50:.0f} ms against {overall:.0f} ms overall; judged correct in {judged} of {n}",
                                  sql, strength=True))  # fmt: skip
    return [f for f in found if f]


DETECTORS: list[Callable[[SqlEngine, int], list[Finding]]] = [
    span_errors, swallowed_errors, empty_answers, version_regressions, apologies, overlong_answers,
    negative_feedback_paths, retry_loops, injections, fast_and_correct,
]  # fmt: skip


def detect(engine: SqlEngine) -> list[Finding]:
    """Every detector's findings, one per distinct set of affected traces (the same traces seen by
    several detectors are one problem described several ways)."""
    total = int(_rows(engine, "SELECT count(*) FROM traces")[0][0])
    merged: dict[tuple[str, ...], Finding] = {}
    for detector in DETECTORS:
        for finding in detector(engine, total):
            key = tuple(finding.affected)
            if key in merged:
                first = merged[key]
                first.also = [*first.also, f"{finding.kind}: {finding.statement}"]
            else:
                merged[key] = finding
    return list(merged.values())
