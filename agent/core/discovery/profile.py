"""What the traces table holds, measured before anything is tested: which tags, metadata keys, span
names, assessments and request fields exist, how many values each takes, and the cut points for bins.

Everything is learnt from the data with a handful of SQL queries; nothing here knows what agent
produced the traces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analyze_experiment.agent.core.traces.engine import SqlEngine

TOP_VALUES = 30  # values of one key kept as they are; rarer ones become "(other)"
SPAN_NAMES = 40  # the most common span names are profiled; the rest are too rare to test
REQUEST_SAMPLE = 200

SPAN_MS = "(unix_millis(s.end_time) - unix_millis(s.start_time))"
SPAN_OUTPUTS = "s.attributes['mlflow.spanOutputs']"
SPAN_FAILED = "(s.status_code = 'ERROR' OR size(filter(s.events, e -> e.name = 'exception')) > 0)"
MODEL_KEYS = ("mlflow.llm.model", "gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
# A failed span's error, as a signature: its status message (else its exception's type and message) with
# numbers blanked, so one error raised with different ids or counts is one signature.
ERROR_TEXT = (
    "coalesce(nullif(s.status_message, ''), element_at(transform(filter(s.events, e -> e.name = 'exception'), "
    "e -> concat_ws(': ', e.attributes['exception.type'], e.attributes['exception.message'])), 1))"
)
ERROR_SIGNATURE = f"substr(regexp_replace({ERROR_TEXT}, '[0-9]+', '9'), 1, 120)"
ERRORS = 10  # the most common error signatures are profiled
ASSESSMENT_ERROR_SIGNATURE = "substr(regexp_replace(a.feedback.error, '[0-9]+', '9'), 1, 120)"
LLM_TYPES = ("'\"CHAT_MODEL\"'", "'\"LLM\"'")


def degenerate(text: str) -> str:
    """SQL: a JSON value that says nothing: null, "", [], {}, 0, or an object whose every field is one of
    those (`{"results": [], "count": 0}`: zero results)."""
    squeezed = f"replace({text}, ' ', '')"
    # [] and {} become "" by plain replacement, so the patterns need no escapes (Spark and DuckDB read
    # backslashes in literals differently)
    blanked = f"replace(replace({squeezed}, '[]', '\"\"'), '{{}}', '\"\"')"
    only_empty_fields = f'{blanked} rlike \'^[{{]"[^"]*":(""|null|0)(,"[^"]*":(""|null|0))*[}}]$\''
    # CASE, not OR: the pattern runs only on short outputs that are not plainly empty
    return (
        f"(CASE WHEN {text} IS NULL THEN true WHEN length({text}) >= 200 THEN false "
        f"WHEN {squeezed} IN ('', '\"\"', '[]', '{{}}', 'null', '0') THEN true "
        f"ELSE {only_empty_fields} END)"
    )


@dataclass
class KeyProfile:
    """A tag, metadata key or request field: how many traces carry it, how many values it takes."""

    key: str
    traces: int
    distinct: int
    top: list[str] = field(default_factory=list)


@dataclass
class SpanProfile:
    name: str
    span_type: str
    traces: int
    calls: int
    usual_ms: float  # the 25th percentile, or the median where a fast path makes the 25th unusual
    usual_is_median: bool
    median_ms: float
    tail_ms: float  # the 90th percentile
    failed: int
    degenerate: int
    repeated: bool = False


@dataclass
class AssessmentProfile:
    name: str
    source: str
    traces: int
    errored: int
    booleans: int
    words: int
    low: float | None
    high: float | None
    errors: dict[str, int] = field(default_factory=dict)  # error signature -> traces where it was recorded


@dataclass
class Profile:
    traces: int
    first: datetime | None
    last: datetime | None
    ok: int
    p95_ms: float
    cuts: dict[str, list[float]]
    tags: list[KeyProfile]
    metadata: list[KeyProfile]
    spans: list[SpanProfile]
    assessments: list[AssessmentProfile]
    request_fields: list[KeyProfile]
    request_patterns: KeyProfile
    models: list[str]
    idle_ms: list[float]  # median and 99th percentile of the time no step covers (IDLE_MS)
    p95_by_path: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # error signature -> traces with a span failing so
    failing: int = 0  # traces with any failed span


QUANTILES = "array(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)"  # deciles: a cause can be the longest tenth
SPAN_COUNT = "size(filter(spans, s -> s.parent_id IS NOT NULL))"
LLM_COUNT = f"size(filter(spans, s -> s.attributes['mlflow.spanType'] IN ({', '.join(LLM_TYPES)})))"
# A call repeated with the same input counts once: a repeat must not move its own trace up a threshold.
TOOL_COUNT = (
    "size(array_distinct(transform(filter(spans, s -> s.attributes['mlflow.spanType'] = '\"TOOL\"'), "
    "s -> concat(s.name, ':', coalesce(s.attributes['mlflow.spanInputs'], '')))))"
)
PATH = (
    "array_join(array_sort(array_distinct(transform(filter(spans, s -> s.parent_id IS NOT NULL), s -> s.name))), ',')"
)
MIN_PATH_TRACES = 20
# Time of the trace that no step covers: waiting before the first step or after the last one.
_STEPS = "filter(spans, s -> s.parent_id IS NOT NULL)"
IDLE_MS = (
    f"(execution_duration_ms - (unix_millis(array_max(transform({_STEPS}, s -> s.end_time))) "
    f"- unix_millis(array_min(transform({_STEPS}, s -> s.start_time)))))"
)
REQUEST_PATTERN = "regexp_replace(substr(request, 1, 80), '[0-9]+', '9')"
MEASURES = {
    "spans": SPAN_COUNT,
    "llm_calls": LLM_COUNT,
    "tool_calls": TOOL_COUNT,
    "request_chars": "length(request)",
    "response_chars": "length(response)",
}


def profile(engine: SqlEngine) -> Profile:
    totals = _one(
        engine,
        "SELECT count(*) AS n, count_if(state = 'OK') AS ok, min(request_time) AS first, "
        "max(request_time) AS last, percentile(execution_duration_ms, 0.95) AS p95, "
        f"percentile({IDLE_MS}, array(0.5, 0.99)) AS idle, "
        + ", ".join(f"percentile({sql}, {QUANTILES}) AS {name}" for name, sql in MEASURES.items())
        + " FROM traces",
    )
    n = int(totals["n"] or 0)
    return Profile(
        traces=n,
        ok=int(totals["ok"] or 0),
        first=totals["first"],
        last=totals["last"],
        p95_ms=float(totals["p95"] or 0),
        idle_ms=[float(v or 0) for v in totals["idle"] or [0, 0]],
        cuts={name: sorted({float(v) for v in totals[name] or [] if v is not None}) for name in MEASURES},
        tags=_keys(engine, "tags", n),
        metadata=_keys(engine, "trace_metadata", n),
        spans=_spans(engine),
        assessments=_assessments(engine),
        request_fields=_request_fields(engine, n),
        request_patterns=_patterns(engine),
        models=_models(engine),
        p95_by_path=_p95_by_path(engine),
        **_errors(engine),
    )


def _one(engine: SqlEngine, sql: str) -> dict[str, Any]:
    records = engine.execute(sql).records()
    return records[0] if records else {}


def _keys(engine: SqlEngine, column: str, total: int) -> list[KeyProfile]:
    rows = engine.execute(
        f"WITH kv AS (SELECT k, {column}[k] AS v, count(*) AS c FROM traces LATERAL VIEW explode(map_keys({column})) t "
        "AS k GROUP BY k, v), ranked AS (SELECT k, v, c, row_number() OVER (PARTITION BY k ORDER BY c DESC, v) AS r, "
        "count(*) OVER (PARTITION BY k) AS d, sum(c) OVER (PARTITION BY k) AS traces FROM kv) "
        f"SELECT k, v, d, traces FROM ranked WHERE r <= {TOP_VALUES} ORDER BY k, r"
    ).rows
    return [k for k in _key_profiles(rows) if bounded(k, total)]


def _key_profiles(rows: list[list[Any]]) -> list[KeyProfile]:
    """Rows of (key, value, distinct values, traces with the key), the most common values first."""
    keys: dict[str, KeyProfile] = {}
    for key, value, distinct, traces in rows:
        found = keys.setdefault(str(key), KeyProfile(str(key), int(traces), int(distinct)))
        found.top.append(str(value))
    return list(keys.values())


def bounded(key: KeyProfile, total: int) -> bool:
    """A key worth slicing by: more than one value, and not nearly one value per trace (ids, timestamps,
    free text), measured as distinct values over the traces that carry the key."""
    return key.distinct >= 2 and key.distinct <= max(2, key.traces // 4) and key.traces >= min(total, 10) // 2


def _spans(engine: SqlEngine) -> list[SpanProfile]:
    rows = engine.execute(
        f"SELECT s.name AS name, max(s.attributes['mlflow.spanType']) AS type, count(DISTINCT trace_id) AS traces, "
        f"count(*) AS calls, percentile(CASE WHEN s.status_code <> 'ERROR' THEN {SPAN_MS} END, array(0.25, 0.4, 0.5, 0.9)) AS q, count_if({SPAN_FAILED}) AS failed, "
        f"count_if(s.status_code <> 'ERROR' AND {degenerate(SPAN_OUTPUTS)}) AS empty "
        "FROM traces LATERAL VIEW explode(spans) t AS s WHERE s.parent_id IS NOT NULL GROUP BY s.name "
        f"ORDER BY traces DESC, name LIMIT {SPAN_NAMES}"
    ).records()
    repeated = {
        str(row[0])
        for row in engine.execute(
            "SELECT DISTINCT s.name FROM traces LATERAL VIEW explode(spans) t AS s WHERE s.parent_id IS NOT NULL "
            "GROUP BY trace_id, s.name, coalesce(s.attributes['mlflow.spanInputs'], '') HAVING count(*) >= 2"
        ).rows
    }
    return [
        SpanProfile(
            name=str(r["name"]),
            span_type=str(r["type"] or "").strip('"'),
            traces=int(r["traces"]),
            calls=int(r["calls"]),
            **_usual(r["q"]),
            failed=int(r["failed"]),
            degenerate=int(r["empty"]),
            repeated=str(r["name"]) in repeated,
        )
        for r in rows
    ]


def _usual(quantiles: list[float] | None) -> dict[str, Any]:
    """The span's usual duration, over its successful calls (a call that fails at once is no measure of
    how long the work takes): its 25th percentile, so that a slowdown in half the traffic does not
    become the norm; but its median when over 60% of calls would exceed three times that (a fast path,
    such as a cache hit, has made the 25th percentile unusual). And its 90th percentile: a span whose
    durations spread wide is not slow for being in its own long tail."""
    p25, p40, p50, p90 = (float(v or 0) for v in (quantiles or [0, 0, 0, 0]))
    fast_path = p40 > 3 * p25
    return {"usual_ms": p50 if fast_path else p25, "usual_is_median": fast_path, "median_ms": p50, "tail_ms": p90}


NEGATIVE_WORDS = (
    "no",
    "fail",
    "failed",
    "false",
    "incorrect",
    "wrong",
    "bad",
    "negative",
    "unsafe",
    "irrelevant",
    "not_relevant",
    "unhelpful",
    "thumbs_down",
    "reject",
    "rejected",
)
ERRORED = "(a.feedback.error IS NOT NULL OR a.feedback.value IS NULL OR a.feedback.value = 'null')"


def _assessments(engine: SqlEngine) -> list[AssessmentProfile]:
    words = ", ".join(f"'\"{w}\"'" for w in (*NEGATIVE_WORDS, "yes", "pass", "passed", "true", "correct", "good"))
    rows = engine.execute(
        "SELECT a.name AS name, a.source.source_type AS source, count(DISTINCT trace_id) AS traces, "
        f"count_if({ERRORED}) AS errored, count_if(a.feedback.value IN ('true', 'false')) AS booleans, "
        f"count_if(lower(a.feedback.value) IN ({words})) AS words, "
        "min(try_cast(a.feedback.value AS DOUBLE)) AS low, max(try_cast(a.feedback.value AS DOUBLE)) AS high "
        "FROM traces LATERAL VIEW explode(assessments) t AS a WHERE a.expectation IS NULL OR a.feedback IS NOT NULL "
        "GROUP BY 1, 2 ORDER BY traces DESC, name LIMIT 40"
    ).records()
    errors = _assessment_errors(engine)
    return [
        AssessmentProfile(
            name=str(r["name"]),
            source=str(r["source"] or "UNKNOWN"),
            traces=int(r["traces"]),
            errored=int(r["errored"]),
            booleans=int(r["booleans"]),
            words=int(r["words"]),
            low=_float(r["low"]),
            high=_float(r["high"]),
            errors=errors.get((str(r["name"]), str(r["source"] or "UNKNOWN")), {}),
        )
        for r in rows
        if r["name"]
    ]


def _assessment_errors(engine: SqlEngine) -> dict[tuple[str, str], dict[str, int]]:
    """Per assessment, its most common error signatures (numbers blanked) and the traces with each."""
    rows = engine.execute(
        f"SELECT a.name AS name, a.source.source_type AS source, {ASSESSMENT_ERROR_SIGNATURE} AS signature, "
        "count(DISTINCT trace_id) AS traces FROM traces LATERAL VIEW explode(assessments) t AS a "
        f"WHERE a.feedback.error IS NOT NULL GROUP BY 1, 2, 3 ORDER BY traces DESC, signature LIMIT {4 * ERRORS}"
    ).rows
    found: dict[tuple[str, str], dict[str, int]] = {}
    for name, source, signature, traces in rows:
        if name and signature:
            found.setdefault((str(name), str(source or "UNKNOWN")), {})[str(signature)] = int(traces)
    return found


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _request_fields(engine: SqlEngine, total: int) -> list[KeyProfile]:
    """Top-level fields of JSON requests that hold short scalar values (a category, a mode, a locale)."""
    sample = engine.execute(f"SELECT request FROM traces WHERE request IS NOT NULL LIMIT {REQUEST_SAMPLE}").rows
    seen: dict[str, int] = {}
    for (text,) in sample:
        try:
            body = json.loads(str(text))
        except ValueError:
            continue
        if isinstance(body, dict):
            for key, value in body.items():
                if isinstance(value, str | int | bool) and len(str(value)) <= 80 and _plain_key(key):
                    seen[key] = seen.get(key, 0) + 1
    keys = [k for k, count in seen.items() if count >= len(sample) / 2][:10]
    if not keys:
        return []
    fields = ", ".join(f"named_struct('k', {quote(key)}, 'v', {request_field(key)})" for key in keys)
    rows = engine.execute(
        f"WITH kv AS (SELECT f.k AS k, f.v AS v, count(*) AS c FROM traces LATERAL VIEW explode(array({fields})) t AS f "
        "WHERE f.v IS NOT NULL GROUP BY 1, 2), ranked AS (SELECT k, v, c, row_number() OVER (PARTITION BY k ORDER BY "
        "c DESC, v) AS r, count(*) OVER (PARTITION BY k) AS d, sum(c) OVER (PARTITION BY k) AS traces FROM kv) "
        f"SELECT k, v, d, traces FROM ranked WHERE r <= {TOP_VALUES} ORDER BY k, r"
    ).rows
    return [k for k in _key_profiles(rows) if bounded(k, total)]


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _plain_key(key: str) -> bool:
    return key.replace("_", "").replace("-", "").isalnum() and len(key) <= 60


def request_field(key: str) -> str:
    """SQL: a top-level scalar field of the request, read with a regular expression rather than a JSON
    function, because a request that is not valid JSON (broken surrogates, a cut-off body) must not stop
    the scan: DuckDB's JSON operators fail the whole query on one malformed row."""
    return f"nullif(regexp_extract(request, '\"{key}\" *: *\"?([^\",}}]*)', 1), '')"


def _patterns(engine: SqlEngine) -> KeyProfile:
    rows = engine.execute(
        f"SELECT {REQUEST_PATTERN} AS v, count(*) AS c, count(*) OVER () AS d, sum(count(*)) OVER () AS traces "
        f"FROM traces WHERE request IS NOT NULL GROUP BY 1 ORDER BY c DESC, v LIMIT {TOP_VALUES}"
    ).rows
    if not rows:
        return KeyProfile("request pattern", 0, 0)
    return KeyProfile("request pattern", int(rows[0][3]), int(rows[0][2]), [str(r[0]) for r in rows])


def _models(engine: SqlEngine) -> list[str]:
    picks = ", ".join(f"s.attributes['{key}']" for key in MODEL_KEYS)
    rows = engine.execute(
        f"SELECT DISTINCT replace(coalesce({picks}), '\"', '') AS m FROM traces LATERAL VIEW explode(spans) t AS s "
        f"WHERE coalesce({picks}) IS NOT NULL ORDER BY m LIMIT {TOP_VALUES}"
    ).rows
    return [str(r[0]) for r in rows]


def _errors(engine: SqlEngine) -> dict[str, Any]:
    """The most common error signatures of failed spans, each with the traces it occurs in, and how many
    traces have any failed span."""
    signatures = f"array_distinct(filter(transform(filter(spans, s -> {SPAN_FAILED}), s -> {ERROR_SIGNATURE}), x -> x IS NOT NULL))"
    rows = engine.execute(
        f"WITH failing AS (SELECT {signatures} AS signatures FROM traces WHERE exists(spans, s -> {SPAN_FAILED})) "
        "SELECT signature, count(*) AS traces, (SELECT count(*) FROM failing) AS failing FROM failing "
        f"LATERAL VIEW explode(signatures) t AS signature GROUP BY signature ORDER BY traces DESC, signature LIMIT {ERRORS}"
    ).rows
    return {"errors": {str(sig): int(n) for sig, n, _ in rows}, "failing": int(rows[0][2]) if rows else 0}


def _p95_by_path(engine: SqlEngine) -> dict[str, float]:
    """The 95th percentile of execution time among traces that call the same steps (the common paths)."""
    rows = engine.execute(
        f"SELECT {PATH} AS path, percentile(execution_duration_ms, 0.95) AS p95 FROM traces GROUP BY 1 "
        f"HAVING count(*) >= {MIN_PATH_TRACES} ORDER BY count(*) DESC LIMIT {TOP_VALUES}"
    ).rows
    return {str(path): float(p95) for path, p95 in rows if path is not None and p95 is not None}
