"""Untrusted SQL: everything but one query over the traces table is refused, nothing escapes the
sandbox, runaway queries stop, and big results are capped with the cut counted."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.traces.engine import DuckDBEngine, SqlTimeout
from agent.traces.sql import SqlRefused
from tests.sql.fixture_table import build

SECRET_FILE_TEXT = "top-secret-line"

REFUSED = [
    "DROP TABLE traces", "DELETE FROM traces", "UPDATE traces SET state = 'OK'", "INSERT INTO traces SELECT * FROM traces",
    "CREATE TABLE x AS SELECT * FROM traces", "CREATE VIEW v AS SELECT 1", "ALTER TABLE traces ADD COLUMN x INT",
    "COPY traces TO '{out}'", "COPY (SELECT 1) TO '{out}' (FORMAT csv)", "EXPORT DATABASE '{dir}'",
    "ATTACH '{db}' AS other", "DETACH traces", "PRAGMA database_list", "SET enable_external_access = true",
    "INSTALL httpfs", "LOAD httpfs", "CALL pragma_version()", "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}')", "SELECT * FROM read_text('{secret}')", "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_json('{secret}')", "SELECT * FROM read_parquet('{secret}')", "SELECT * FROM read_files('{secret}')",
    "SELECT * FROM '{secret}'", "SELECT * FROM glob('/etc/*')", "SELECT * FROM range(10)", "SELECT getenv('HOME')",
    "SELECT * FROM main.traces", "SELECT * FROM system.information_schema.tables", "SELECT * FROM duckdb_settings()",
    "SELECT * FROM other_table", "SELECT * INTO copy_of FROM traces", "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE traces", "SELECT 1 -- harmless\n; DROP TABLE traces", "/* x */ DELETE FROM traces",
    "WITH x AS (SELECT 1) DELETE FROM traces", "SELECT * FROM traces, read_text('{secret}')",
    "SELECT (SELECT content FROM read_text('{secret}')) FROM traces", "DESCRIBE traces", "SHOW TABLES",
    "SELECT current_setting('memory_limit')", "SELECT * FROM query('SELECT 1')", "SELECT * FROM sniff_csv('{secret}')",
    "USE other", "CHECKPOINT", "VACUUM", "BEGIN TRANSACTION", "",
    "SELECT * FROM read_csv('https://127.0.0.1:9/x.csv')", "SELECT * FROM 'http://127.0.0.1:9/x.parquet'",
    "SELECT * FROM read_json_auto('s3://bucket/x.json')", "SELECT http_get('http://127.0.0.1:9')",
    "SELECT * FROM traces WHERE trace_id IN (SELECT * FROM read_text('{secret}'))",
]  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sandbox")
    build(root / "traces.duckdb")
    (root / "secret.txt").write_text(f"{SECRET_FILE_TEXT}\n")
    return root


@pytest.fixture(scope="module")
def engine(workspace: Path) -> DuckDBEngine:
    return DuckDBEngine(workspace / "traces.duckdb", timeout_s=2, row_cap=3)


def hostile_queries(workspace: Path) -> list[str]:
    values = {"secret": workspace / "secret.txt", "out": workspace / "out.csv", "dir": workspace / "export",
              "db": workspace / "other.duckdb"}  # fmt: skip
    queries = [q.format(**values) for q in REFUSED]
    # The same attacks dressed up: case, comments, whitespace, unicode look-alikes, trailing junk.
    dressed = []
    for query, dress in itertools.product(queries, range(4)):
        if dress == 0:
            dressed.append(query.upper())
        elif dress == 1:
            dressed.append(f"/* analyst query */ {query} -- done")
        elif dress == 2:
            dressed.append(query.replace(" ", "\n\t "))
        else:
            dressed.append(query.replace("SELECT", "ＳＥＬＥＣＴ").replace("DROP", "ＤＲＯＰ"))
    return queries + dressed


def test_every_hostile_query_is_refused_and_nothing_escapes(engine: DuckDBEngine, workspace: Path) -> None:
    queries = hostile_queries(workspace)
    assert len(queries) >= 200
    for query in queries:
        with pytest.raises(UserError) as refused:
            result = engine.execute(query)
            pytest.fail(f"ran: {query!r} -> {result.rows}")
        assert SECRET_FILE_TEXT not in refused.value.message
        assert len(refused.value.message.splitlines()) == 1
    assert not (workspace / "out.csv").exists() and not (workspace / "export").exists()
    assert not (workspace / "other.duckdb").exists()
    assert engine.execute("SELECT count(*) FROM traces").rows == [[6]]  # still healthy


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
