"""Realistic analyst queries in Databricks SQL, with exact answers read off the fixture table.

Each answer can be checked by reading tests/sql/fixture_table.py; the suite checks that DuckDB,
through our translation, gives exactly that.
"""

from __future__ import annotations

import pytest

from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from tests.sql.fixture_table import build

CASES: list[tuple[str, str, list[list[object]]]] = [
    ("count", "SELECT count(*) FROM traces", [[6]]),
    ("error rate", "SELECT count_if(state = 'ERROR') / count(*) AS r FROM traces", [[2 / 6]]),
    ("states", "SELECT state, count(*) n FROM traces GROUP BY state ORDER BY state", [["ERROR", 2], ["OK", 4]]),
    ("median latency (interpolated)", "SELECT percentile(execution_duration_ms, 0.5) FROM traces", [[1600.0]]),
    ("p90 latency", "SELECT percentile(execution_duration_ms, 0.9) FROM traces", [[7500.0]]),
    ("ok latency avg", "SELECT avg(execution_duration_ms) FROM traces WHERE state = 'OK'", [[2250.0]]),
    ("trace names", "SELECT tags['mlflow.traceName'] AS name, count(*) FROM traces GROUP BY 1", [["agent", 6]]),
    ("missing map key", "SELECT count(*) FROM traces WHERE tags['env'] IS NULL", [[5]]),
    ("element_at", "SELECT trace_id FROM traces WHERE element_at(tags, 'env') = 'prod'", [["tr-4"]]),
    ("map_contains_key", "SELECT trace_id FROM traces WHERE map_contains_key(tags, 'env')", [["tr-4"]]),
    (
        "exists lambda",
        "SELECT trace_id FROM traces WHERE exists(spans, s -> s.status_code = 'ERROR' AND s.name = 'search')",
        [["tr-2"]],
    ),
    (
        "forall lambda",
        "SELECT trace_id FROM traces WHERE forall(spans, s -> s.status_code = 'OK') ORDER BY 1",
        [["tr-1"], ["tr-3"], ["tr-4"], ["tr-6"]],
    ),
    ("size of spans", "SELECT trace_id, size(spans) FROM traces WHERE size(spans) > 2", [["tr-4", 3]]),
    (
        "explode spans per name",
        "SELECT s.name, count(*) FROM traces LATERAL VIEW explode(spans) t AS s GROUP BY s.name ORDER BY s.name",
        [["book", 1], ["llm", 2], ["root", 6], ["search", 3]],
    ),
    (
        "tool errors",
        "SELECT s.name, count_if(s.status_code = 'ERROR') FROM traces LATERAL VIEW explode(spans) t AS s "
        "WHERE s.attributes['mlflow.spanType'] = '\"TOOL\"' GROUP BY 1 ORDER BY 1",
        [["book", 0], ["search", 1]],
    ),
    (
        "span duration",
        "SELECT max(unix_millis(s.end_time) - unix_millis(s.start_time)) FROM traces "
        "LATERAL VIEW explode(spans) t AS s WHERE s.name = 'search'",
        [[9500]],
    ),
    (
        "aliased table",
        "SELECT t.trace_id, s.name FROM traces t LATERAL VIEW explode(t.spans) x AS s WHERE s.name = 'book'",
        [["tr-4", "book"]],
    ),
    (
        "exception events",
        "SELECT e.attributes['exception.message'] FROM traces LATERAL VIEW explode(spans) t AS s "
        "LATERAL VIEW explode(s.events) u AS e",
        [["TimeoutError: 9.5s"]],
    ),
    (
        "filter + transform",
        "SELECT trace_id, transform(filter(spans, s -> s.name <> 'root'), s -> s.name) FROM traces "
        "WHERE trace_id = 'tr-4'",
        [["tr-4", ["book", "search"]]],
    ),
    ("colon json path", "SELECT request:question FROM traces WHERE trace_id = 'tr-1'", [["find flights"]]),
    ("colon json nested", "SELECT request:messages[0].content FROM traces WHERE trace_id = 'tr-6'", [["hi"]]),
    ("colon json cast", "SELECT request:question::string FROM traces WHERE trace_id = 'tr-3'", [["refund?"]]),
    (
        "get_json_object",
        "SELECT get_json_object(response, '$.answer') FROM traces WHERE trace_id = 'tr-4'",
        [["Booked"]],
    ),
    ("rlike apology", "SELECT trace_id FROM traces WHERE response rlike '(?i)sorry|not sure'", [["tr-3"]]),
    ("like", "SELECT count(*) FROM traces WHERE request LIKE '%find%'", [[2]]),
    (
        "empty responses",
        "SELECT trace_id FROM traces WHERE state = 'OK' AND (response IS NULL OR response IN ('\"\"', 'null'))",
        [["tr-6"]],
    ),
    (
        "assessments by source",
        "SELECT a.source.source_type, count(*) FROM traces LATERAL VIEW explode(assessments) "
        "t AS a GROUP BY 1 ORDER BY 1",
        [["HUMAN", 2], ["LLM_JUDGE", 2]],
    ),
    (
        "assessment failures",
        "SELECT trace_id FROM traces LATERAL VIEW explode(assessments) t AS a "
        "WHERE a.name = 'thumbs' AND a.feedback.value = 'false'",
        [["tr-3"]],
    ),
    (
        "judge errors",
        "SELECT count_if(a.feedback.error IS NOT NULL) FROM traces LATERAL VIEW explode(assessments) t AS a",
        [[1]],
    ),
    (
        "count_if of a lambda",
        "SELECT count_if(exists(assessments, a -> a.source.source_type = 'HUMAN')) FROM traces",
        [[2]],
    ),
    ("count_if over nothing", "SELECT count_if(state = 'ERROR') FROM traces WHERE trace_id = 'none'", [[0]]),
    (
        "token usage",
        "SELECT sum(cast(get_json_object(s.attributes['mlflow.chat.tokenUsage'], '$.input_tokens') "
        "AS BIGINT)) FROM traces LATERAL VIEW explode(spans) t AS s",
        [[150]],
    ),
    (
        "by day",
        "SELECT to_date(request_time) d, count(*) FROM traces GROUP BY 1 ORDER BY 1",
        [["2026-03-01", 3], ["2026-03-02", 3]],
    ),
    (
        "date_trunc hour",
        "SELECT date_trunc('HOUR', request_time), count(*) FROM traces GROUP BY 1 ORDER BY 1",
        [["2026-03-01T09:00:00", 3], ["2026-03-02T09:00:00", 3]],
    ),
    ("dayofweek (Sunday = 1)", "SELECT DISTINCT dayofweek(request_time) FROM traces ORDER BY 1", [[1], [2]]),
    ("hour", "SELECT DISTINCT hour(request_time) FROM traces", [[9]]),
    (
        "CTE and window",
        "WITH ranked AS (SELECT trace_id, row_number() OVER (ORDER BY execution_duration_ms DESC) "
        "AS r FROM traces) SELECT trace_id FROM ranked WHERE r = 1",
        [["tr-2"]],
    ),
    (
        "QUALIFY",
        "SELECT trace_id, state FROM traces QUALIFY row_number() OVER (PARTITION BY state ORDER BY "
        "execution_duration_ms) = 1 ORDER BY state",
        [["tr-5", "ERROR"], ["tr-3", "OK"]],
    ),
    ("max_by", "SELECT max_by(trace_id, execution_duration_ms) FROM traces WHERE state = 'OK'", [["tr-6"]]),
    ("collect_set size", "SELECT size(collect_set(s.name)) FROM traces LATERAL VIEW explode(spans) t AS s", [[4]]),
    (
        "union",
        "SELECT 'slow' k, count(*) FROM traces WHERE execution_duration_ms > 4000 UNION ALL "
        "SELECT 'fast', count(*) FROM traces WHERE execution_duration_ms < 1000 ORDER BY 1",
        [["fast", 2], ["slow", 2]],
    ),
    ("nulls sort first", "SELECT trace_id FROM traces ORDER BY response, trace_id LIMIT 2", [["tr-2"], ["tr-5"]]),
    (
        "metadata map",
        "SELECT trace_metadata['mlflow.trace.user'] u, count(*) FROM traces GROUP BY 1 ORDER BY 1",
        [["user-0", 3], ["user-1", 3]],
    ),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DuckDBEngine:
    return DuckDBEngine(build(tmp_path_factory.mktemp("conformance") / "traces.duckdb"))


def test_suite_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(("name", "sql", "expected"), CASES, ids=[c[0] for c in CASES])
def test_duckdb_matches_the_answer(engine: DuckDBEngine, name: str, sql: str, expected: list[list[object]]) -> None:
    result = engine.execute(sql)
    assert result.rows == expected, f"{name}: ran as {result.executed_sql}"


def test_struct_filters_after_explode_use_the_fast_shape(engine: DuckDBEngine) -> None:
    """CROSS JOIN UNNEST filtered on the struct ran 30x slower than UNNEST in a subquery (300k traces:
    2.2 s against 0.07 s); the translation must produce the fast shape."""
    result = engine.execute(
        "SELECT s.name FROM traces LATERAL VIEW explode(spans) t AS s WHERE s.status_code = 'ERROR'"
    )
    assert "(SELECT *, UNNEST(spans) AS s FROM traces) AS traces" in result.executed_sql
    assert "CROSS JOIN" not in result.executed_sql
