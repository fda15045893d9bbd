"""Census-driven questions that may well come back "no": each SQL selects affected traces only when
the pattern holds, so the same rule (three or more traces) validates or refutes them.

Regexes stay free of quotes and backslashes so a query means the same on Spark and DuckDB.
"""

from __future__ import annotations

from pydantic import BaseModel

from agent.insights.models import Category, Census

_ERROR_TEXT = (
    "array_join(transform(filter(spans, s -> s.status_code = 'ERROR'), s -> concat_ws(' ', s.status_message, "
    "array_join(transform(s.events, e -> e.attributes['exception.message']), ' '))), ' | ')"
)


class Probe(BaseModel):
    signal: str
    statement: str
    rationale: str
    sql: str
    category: Category


def error_burst(census: Census) -> Probe | None:
    if census.error_count < 3:
        return None
    sql = ("WITH hourly AS (SELECT date_trunc('HOUR', request_time) AS hour, count_if(state = 'ERROR') AS errors "
           "FROM traces GROUP BY 1), stats AS (SELECT max(errors) AS peak, avg(errors) AS mean FROM hourly), "
           "peak AS (SELECT hour FROM hourly ORDER BY errors DESC, hour LIMIT 1) "
           "SELECT trace_id FROM traces, stats WHERE state = 'ERROR' "
           "AND date_trunc('HOUR', request_time) = (SELECT hour FROM peak) "
           "AND stats.peak >= 3 * stats.mean AND stats.peak >= 3")  # fmt: skip
    return Probe(signal="error_burst", statement="failures cluster in a single hour",
                 rationale=f"census: {census.error_count} of {census.trace_count} traces failed (Q1); traffic by "
                           "day (Q14) does not show whether the failures are spread out or arrive in a burst",
                 sql=sql, category=Category.OPERATIONAL)  # fmt: skip


def error_cluster(census: Census) -> Probe | None:
    if census.error_count < 3:
        return None
    sql = (f"WITH failed AS (SELECT trace_id, regexp_replace({_ERROR_TEXT}, '[0-9]+', 'N') AS message "
           "FROM traces WHERE state = 'ERROR'), top AS (SELECT message, count(*) AS n FROM failed "
           "GROUP BY message ORDER BY n DESC, message LIMIT 1) SELECT trace_id FROM failed "
           "WHERE message = (SELECT message FROM top) AND message <> '' "
           "AND (SELECT n FROM top) >= 0.5 * (SELECT count(*) FROM failed)")  # fmt: skip
    return Probe(signal="error_cluster", statement="most failures share one error message",
                 rationale=f"census: error classes (Q8) over {census.error_count} failed traces; if one message "
                           "explains half of them, one fix removes most failures",
                 sql=sql, category=Category.OPERATIONAL)  # fmt: skip


def latency_tail(census: Census) -> Probe | None:
    p95 = census.sections.get("latency_ok_ms", {}).get("p95")
    if not p95 or census.ok_count < 20:
        return None
    # The span must own the tail *and* be abnormally slow there (3x its usual duration): a tail that is
    # simply the LLM call being the longest step, as always, is not a finding.
    sql = ("WITH cut AS (SELECT percentile(execution_duration_ms, 0.95) AS p95 FROM traces WHERE state = 'OK'), "
           "usual AS (SELECT s.name, percentile(unix_millis(s.end_time) - unix_millis(s.start_time), 0.5) AS p50 "
           "FROM traces LATERAL VIEW explode(spans) u AS s WHERE s.parent_id IS NOT NULL GROUP BY s.name), "
           "tail AS (SELECT trace_id, execution_duration_ms AS total FROM traces, cut WHERE state = 'OK' "
           "AND execution_duration_ms >= cut.p95), spans_in_tail AS (SELECT tail.trace_id, tail.total, s.name, "
           "unix_millis(s.end_time) - unix_millis(s.start_time) AS ms FROM tail JOIN traces t2 ON "
           "t2.trace_id = tail.trace_id LATERAL VIEW explode(t2.spans) x AS s WHERE s.parent_id IS NOT NULL), "
           "longest AS (SELECT trace_id, max_by(name, ms) AS name, max(ms) AS ms, max(total) AS total "
           "FROM spans_in_tail GROUP BY trace_id), top AS (SELECT name, count(*) AS n FROM longest "
           "GROUP BY name ORDER BY n DESC, name LIMIT 1) SELECT trace_id FROM longest JOIN usual ON "
           "usual.name = longest.name WHERE longest.name = (SELECT name FROM top) AND ms >= 0.5 * total "
           "AND ms >= 3 * usual.p50 AND (SELECT n FROM top) >= 0.6 * (SELECT count(*) FROM longest)")  # fmt: skip
    return Probe(signal="latency_tail", statement="one span, abnormally slow, dominates the slowest 5% of successful traces",
                 rationale=f"census: OK traces have p50 {census.sections['latency_ok_ms'].get('p50')} ms and "
                           f"p95 {p95} ms (Q3); span durations (Q6) say which span could own the tail",
                 sql=sql, category=Category.OPERATIONAL)  # fmt: skip


PROBES = [error_burst, error_cluster, latency_tail]


def probes(census: Census) -> list[Probe]:
    return [probe for make in PROBES if (probe := make(census)) is not None]
