"""The baseline census, computed with SQL over the traces table; every number cites its query.

The queries are Databricks SQL, the same dialect analysts and the agent write, so anyone can rerun
one with `traces execute-sql --sql ...` and get the number the census shows.
"""

from __future__ import annotations

from typing import Any

from analyze_experiment.agent.core.insights.models import Census, SqlQuery
from analyze_experiment.agent.core.traces.engine import SqlEngine

_PCTS = ", ".join(f"percentile({{col}}, {q / 100}) AS p{q}{{suffix}}" for q in (50, 90, 95, 99))
_DURATION = "(unix_millis(s.end_time) - unix_millis(s.start_time))"
_ERROR_TEXT = (
    "array_join(transform(filter(spans, s -> s.status_code = 'ERROR'), s -> concat_ws(' ', s.status_message, "
    "array_join(transform(s.events, e -> e.attributes['exception.message']), ' '))), ' | ')"
)
# Regexes stay free of quotes and backslashes: Spark unescapes backslashes in string literals and
# DuckDB does not, so either would make the same query mean different things on the two engines.
ERROR_CLASSES = (
    ("timeout", "(?i)(timed? ?out|deadline exceeded)"),
    ("rate_limit", "(?i)(rate.?limit|too many requests|[^0-9]429([^0-9]|$)|quota)"),
    ("authentication", "(?i)(unauthori[sz]ed|forbidden|[^0-9]40[13]([^0-9]|$)|invalid api key)"),
    ("validation", "(?i)(validation|invalid|malformed|schema|missing required|[^0-9]422([^0-9]|$))"),
    ("not_found", "(?i)(not found|[^0-9]404([^0-9]|$)|no such|does not exist)"),
    ("connection", "(?i)(connection|unreachable|reset by peer|refused|[^0-9]50[234]([^0-9]|$)|network)"),
)
MARKERS = {
    "apology": "(?i)(i.?m sorry|i apologi[sz]e|sorry,|unfortunately)",
    "uncertainty": "(?i)(i.?m not sure|i am not sure|i don.?t know|not certain)",
    "refusal": "(?i)(i can(no|.)t help|i am unable|i.?m unable|i cannot assist)",
}
_CLASS_CASE = (
    "CASE "
    + " ".join(f"WHEN error_text rlike '{rx}' THEN '{name}'" for name, rx in ERROR_CLASSES)
    + " ELSE 'other' END"
)
DURATION_BUCKET = (
    "CASE WHEN execution_duration_ms < 1000 THEN '<1s' WHEN execution_duration_ms < 5000 THEN '1-5s' "
    "WHEN execution_duration_ms < 10000 THEN '5-10s' WHEN execution_duration_ms < 30000 THEN '10-30s' "
    "ELSE '>=30s' END"
)
_SPAN_STATS = (
    "SELECT s.name AS name, count(*) AS calls, count_if(s.status_code = 'ERROR') AS errors, "
    "round(count_if(s.status_code = 'ERROR') / count(*), 6) AS error_rate, "
    + _PCTS.format(col=_DURATION, suffix="_ms")
    + " FROM traces LATERAL VIEW explode(spans) t AS s {where} GROUP BY s.name ORDER BY calls DESC, name"
)

# A long response is one several times the median length. A percentile cut (the old p95) counts
# nothing when the longest answers tie, as templated ones do, and always counts ~5% otherwise.
LONG_TAIL_MEDIANS = 3

QUERIES: dict[str, tuple[str, str]] = {
    "totals": (
        "Q1",
        "SELECT count(*) AS trace_count, count_if(state = 'OK') AS ok_count, "
        "count_if(state = 'ERROR') AS error_count, "
        "coalesce(round(count_if(state = 'ERROR') / count(*), 6), 0) AS error_rate, "
        "min(request_time) AS first, max(request_time) AS last FROM traces",
    ),
    "latency_ms": ("Q2", f"SELECT {_PCTS.format(col='execution_duration_ms', suffix='')} FROM traces"),
    "latency_ok_ms": (
        "Q3",
        f"SELECT {_PCTS.format(col='execution_duration_ms', suffix='')} FROM traces WHERE state = 'OK'",
    ),
    "latency_error_ms": (
        "Q4",
        f"SELECT {_PCTS.format(col='execution_duration_ms', suffix='')} FROM traces WHERE state = 'ERROR'",
    ),
    "trace_names": (
        "Q5",
        "SELECT tags['mlflow.traceName'] AS name, count(*) AS traces FROM traces GROUP BY 1 ORDER BY traces DESC, name",
    ),
    "spans": ("Q6", _SPAN_STATS.format(where="")),
    "tools": ("Q7", _SPAN_STATS.format(where="WHERE s.attributes['mlflow.spanType'] = '\"TOOL\"'")),
    "error_buckets": (
        "Q8",
        f"WITH failed AS (SELECT execution_duration_ms, {_ERROR_TEXT} AS error_text "
        f"FROM traces WHERE state = 'ERROR') SELECT {_CLASS_CASE} AS error_class, "
        "count(*) AS traces, count_if(execution_duration_ms < 1000) AS fast_failures, "
        "count_if(execution_duration_ms >= 1000) AS slow_failures, "
        "min(error_text) AS example FROM failed GROUP BY 1 ORDER BY traces DESC, error_class",
    ),
    "duration_buckets": (
        "Q9",
        f"SELECT {DURATION_BUCKET} AS bucket, count_if(state = 'OK') AS ok, "
        "count_if(state = 'ERROR') AS error FROM traces GROUP BY 1 "
        "ORDER BY min(execution_duration_ms)",
    ),
    "quality_markers": (
        "Q10",
        "SELECT "
        + ", ".join(f"count_if(response rlike '{rx}') AS {name}" for name, rx in MARKERS.items())
        + ", count_if(response IS NULL OR trim(response) IN ('', '\"\"', 'null', '{}') "
        'OR response rlike \'^[{]"[^"]+": ""[}]$\') '
        "AS empty_responses, "
        + _PCTS.format(col="length(response)", suffix="_chars")
        + " FROM traces WHERE state = 'OK'",
    ),
    "long_tail": (
        "Q11",
        "WITH cut AS (SELECT percentile(length(response), 0.5) AS median FROM traces "
        "WHERE state = 'OK') SELECT count_if(length(response) > cut.median * "
        f"{LONG_TAIL_MEDIANS}) AS long_responses, count(response) AS ok_responses, "
        f"max(cut.median) * {LONG_TAIL_MEDIANS} AS longer_than_chars, max(cut.median) AS median_chars "
        "FROM traces CROSS JOIN cut WHERE state = 'OK'",
    ),
    "assessments": (
        "Q12",
        "SELECT a.name AS name, a.source.source_type AS source_type, count(*) AS total, "
        "count_if(a.feedback.error IS NOT NULL) AS errors, "
        "count_if(a.feedback.value IN ('true', '\"yes\"', '\"pass\"')) AS pass, "
        "count_if(a.feedback.value IN ('false', '\"no\"', '\"fail\"')) AS fail "
        "FROM traces LATERAL VIEW explode(assessments) t AS a "
        # issue references (our own, or MLflow's issue discovery) annotate traces;
        # they are not feedback on the agent
        "WHERE a.feedback IS NOT NULL OR a.expectation IS NOT NULL "
        "GROUP BY 1, 2 ORDER BY total DESC, name",
    ),
    "token_usage": (
        "Q13",
        "SELECT get_json_object(s.attributes['mlflow.llm.model'], '$') AS model, count(*) AS calls, "
        "sum(cast(get_json_object(s.attributes['mlflow.chat.tokenUsage'], '$.input_tokens') "
        "AS BIGINT)) AS input_tokens, "
        "sum(cast(get_json_object(s.attributes['mlflow.chat.tokenUsage'], '$.output_tokens') "
        "AS BIGINT)) AS output_tokens, "
        "round(sum(cast(get_json_object(s.attributes['mlflow.llm.cost'], '$.total_cost') "
        "AS DOUBLE)), 6) AS cost_usd FROM traces LATERAL VIEW explode(spans) t AS s "
        "WHERE s.attributes['mlflow.chat.tokenUsage'] IS NOT NULL "
        "OR s.attributes['mlflow.llm.cost'] IS NOT NULL GROUP BY 1 ORDER BY calls DESC",
    ),
    "traffic_by_day": (
        "Q14",
        "SELECT to_date(request_time) AS day, count(*) AS traces, "
        "count_if(state = 'ERROR') AS errors FROM traces GROUP BY 1 ORDER BY 1",
    ),
}


def compute_census(engine: SqlEngine, *, discovery: bool = True, outcomes: dict[str, str] | None = None) -> Census:
    """The 14 baseline queries and, unless asked not to, the discovery engine's scan of every slice
    (`sections["discovery"]`): the quantitative baseline hypotheses cite."""
    results = {name: engine.execute(sql) for name, (_, sql) in QUERIES.items()}
    totals = results["totals"].records()[0]
    sections: dict[str, Any] = {name: result.records() for name, result in results.items()}
    for single in ("latency_ok_ms", "latency_error_ms", "long_tail"):
        sections[single] = sections[single][0]
    sections["quality_markers"] = sections["quality_markers"][0]
    sections["time_range"] = {"first": totals["first"], "last": totals["last"]}
    sections["query_ids"] = {name: qid for name, (qid, _) in QUERIES.items()}
    for name in ("totals", "latency_ms"):
        sections.pop(name)
    if discovery:
        from analyze_experiment.agent.core.discovery import discover

        sections["discovery"] = discover(engine, outcomes).model_dump(mode="json")
    return Census(
        trace_count=totals["trace_count"],
        ok_count=totals["ok_count"],
        error_count=totals["error_count"],
        error_rate=totals["error_rate"],
        latency_ms=results["latency_ms"].records()[0],
        sections=sections,
        queries=[SqlQuery(id=qid, query=sql, result_summary=name) for name, (qid, sql) in QUERIES.items()],
    )
