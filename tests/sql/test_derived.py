"""A derived table: a query's rows held as the `traces` table of a scratch database, written by a sandbox
worker under the same lockdown as any query, and gone when the work is done."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from analyze_experiment.agent.core.traces.engine import DerivingEngine, SqlTimeout
from analyze_experiment.agent.core.traces.sandbox import SqlSandbox
from analyze_experiment.agent.core.traces.sql import SqlRefused
from analyze_experiment.agent.core.traces.sync import writable
from analyze_experiment.agent.core.traces.worker import ROW_GROUP_SIZE
from tests.sql.fixture_table import build

PER_STATE = "SELECT state, count(*) AS n FROM traces GROUP BY state ORDER BY state"


def test_a_derived_table_holds_the_querys_rows_until_the_work_is_done(tmp_path: Path) -> None:
    engine = DuckDBEngine(build(tmp_path / "traces.duckdb"))
    assert isinstance(engine, DerivingEngine)
    with engine.derived("SELECT trace_id, state, size(spans) AS spans FROM traces") as derived:
        assert derived.execute(PER_STATE).rows == engine.execute(PER_STATE).rows
        assert (
            derived.execute("SELECT sum(spans) AS n FROM traces").rows
            == engine.execute("SELECT sum(size(spans)) AS n FROM traces").rows
        )
        scratch = derived.path
        assert scratch.exists() and scratch.parent != tmp_path
    assert not scratch.parent.exists()
    assert engine.execute("SELECT count(*) AS n FROM traces").rows == [[6]]


def test_a_derived_table_is_checked_and_stopped_like_any_query(tmp_path: Path) -> None:
    engine = DuckDBEngine(build(tmp_path / "traces.duckdb"), timeout_s=0.5)
    with pytest.raises(SqlRefused), engine.derived("SELECT * FROM read_text('/etc/hostname')"):
        pass
    endless = (
        "SELECT count(*) AS n FROM traces a, traces b, traces c, traces d, traces e, traces f, traces g, "
        "traces h, traces i WHERE md5(a.trace_id || b.trace_id || c.trace_id || d.trace_id || e.trace_id "
        "|| f.trace_id || g.trace_id || h.trace_id || i.trace_id) LIKE '%zzzz%'"
    )
    with pytest.raises(SqlTimeout), engine.derived(endless):
        pass


def test_the_worker_locks_the_connection_down_before_the_derived_query_runs(tmp_path: Path) -> None:
    """Below the SQL checks: once the source is attached, nothing else can be read, written or attached."""
    engine = DuckDBEngine(build(tmp_path / "traces.duckdb"))
    secret = tmp_path / "secret.txt"
    secret.write_text("top-secret-line")
    pool = SqlSandbox(engine.heap_bytes)
    escapes = [
        f"SELECT * FROM read_text('{secret}')",
        f"SELECT 1 AS x; COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        f"SELECT 1 AS x; ATTACH '{tmp_path / 'other.duckdb'}' AS other",
    ]
    try:
        for i, sql in enumerate(escapes):
            request = {
                "path": str(engine.path),
                "target": str(tmp_path / f"derived{i}.duckdb"),
                "config": engine._config,
                "sql": sql,
                "timeout_s": 30,
            }
            reply = pool.run({"derive": request}, timeout_s=30)
            assert reply.get("error") == "permission", (sql, reply)
        assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()
    finally:
        pool.close()


def test_a_derived_table_over_a_missing_table_fails_in_one_line(tmp_path: Path) -> None:
    from analyze_experiment.agent.core.errors import UserError

    engine = DuckDBEngine(tmp_path / "missing.duckdb")
    with pytest.raises(UserError, match="the query failed"), engine.derived("SELECT trace_id FROM traces"):
        pass
    assert not (tmp_path / "missing.duckdb").exists()


def test_traces_and_derived_tables_are_stored_in_groups_both_cores_can_scan(tmp_path: Path) -> None:
    """DuckDB scans a table in parallel by row group: both the synced table and a derived one are
    written in groups of ROW_GROUP_SIZE rows, not DuckDB's default of 122,880."""
    import duckdb

    def groups(path: Path) -> int:
        with duckdb.connect(str(path), read_only=True) as con:
            found = con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('traces')").fetchone()
        return int(found[0]) if found else 0

    rows = 3 * ROW_GROUP_SIZE
    with writable(tmp_path / "traces.duckdb") as con:
        con.execute(f"CREATE TABLE traces AS SELECT 'tr-' || range AS trace_id, 'OK' AS state FROM range({rows})")
        con.execute("CHECKPOINT cache")
    engine = DuckDBEngine(tmp_path / "traces.duckdb")
    assert groups(engine.path) == 3
    with engine.derived("SELECT trace_id, state = 'OK' AS finished FROM traces") as derived:
        assert groups(derived.path) == 3
