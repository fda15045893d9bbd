"""Untrusted SQL: everything but one query over the traces table is refused, nothing escapes the
sandbox, runaway queries stop, and big results are capped with the cut counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from analyze_experiment.agent.core.traces.engine import SqlTimeout
from analyze_experiment.agent.core.traces.sql import SqlRefused
from tests.sql.fixture_table import build

SECRET_FILE_TEXT = "top-secret-line"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sandbox")
    build(root / "traces.duckdb")
    (root / "secret.txt").write_text(f"{SECRET_FILE_TEXT}\n")
    return root


@pytest.fixture(scope="module")
def engine(workspace: Path) -> DuckDBEngine:
    return DuckDBEngine(workspace / "traces.duckdb", timeout_s=2, row_cap=3)


def test_refusals_say_what_is_allowed(engine: DuckDBEngine) -> None:
    with pytest.raises(SqlRefused, match="exactly one SELECT"):
        engine.execute("DELETE FROM traces")
    with pytest.raises(SqlRefused, match="only table is `traces`"):
        engine.execute("SELECT * FROM users")


def test_the_locked_connection_blocks_what_the_checks_might_miss(workspace: Path) -> None:
    """Below the SQL checks, DuckDB itself refuses file access (defence in depth)."""
    import duckdb

    engine = DuckDBEngine(workspace / "traces.duckdb")
    with duckdb.connect(str(engine.path), read_only=True, config=engine._config) as con:
        with pytest.raises(duckdb.Error):
            con.execute(f"SELECT * FROM read_text('{workspace / 'secret.txt'}')").fetchall()
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")


def test_runaway_query_is_stopped_and_the_engine_recovers(engine: DuckDBEngine) -> None:
    tables = ", ".join(f"traces t{i}" for i in range(10))  # 6^10 rows, each hashed: minutes of work
    ids = " || ".join(f"t{i}.trace_id" for i in range(10))
    forever = f"SELECT count(*) FROM {tables} WHERE md5({ids}) LIKE '%zzzz%'"
    with pytest.raises(SqlTimeout, match="stopped after 2 s"):
        engine.execute(forever)
    assert engine.execute("SELECT count(*) FROM traces").rows == [[6]]


def test_row_cap_counts_what_was_cut(engine: DuckDBEngine) -> None:
    result = engine.execute("SELECT trace_id FROM traces ORDER BY trace_id")
    assert result.rows == [["tr-1"], ["tr-2"], ["tr-3"]] and result.rows_cut == 3


@pytest.mark.parametrize(
    ("sql", "hint"),
    [
        ("SELECT datediff(DAY, request_time, request_time) FROM traces", "datediff(end, start)"),
        ("SELECT explode_outer(spans) FROM traces", "LATERAL VIEW explode"),
        ("SELECT k FROM traces LATERAL VIEW explode(tags) t AS k, v", "map_keys(tags)"),
        ("SELECT from_json(request, 'a INT') FROM traces", "get_json_object"),
        ("SELECT s.name FROM traces, LATERAL explode(spans) AS t(s)", "LATERAL VIEW explode(arr)"),
    ],
)
def test_untranslatable_constructs_are_refused_with_the_alternative(engine: DuckDBEngine, sql: str, hint: str) -> None:
    with pytest.raises(SqlRefused) as refused:
        engine.execute(sql)
    assert hint in refused.value.message
