"""The traces table over a real MLflow store: schema, incremental sync, the SQL census, execute-sql."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from analyze_experiment.agent.core.traces.census import compute_census
from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from analyze_experiment.agent.core.traces.sync import TraceTableSync
from tests.conftest import Store
from tests.helpers import CliRunner

SEED_COLUMNS = [
    ("trace_id", "VARCHAR"),
    ("client_request_id", "VARCHAR"),
    ("request_time", "TIMESTAMP"),
    ("state", "VARCHAR"),
    ("execution_duration_ms", "BIGINT"),
    ("request", "VARCHAR"),
    ("response", "VARCHAR"),
    ("request_preview", "VARCHAR"),
    ("response_preview", "VARCHAR"),
    ("trace_metadata", "MAP(VARCHAR, VARCHAR)"),
    ("tags", "MAP(VARCHAR, VARCHAR)"),
]
NESTED_COLUMNS = [
    ("trace_location", 'STRUCT("type" VARCHAR, mlflow_experiment STRUCT(experiment_id VARCHAR))'),
    (
        "spans",
        'STRUCT("name" VARCHAR, span_id VARCHAR, trace_id VARCHAR, parent_id VARCHAR, start_time TIMESTAMP, '
        "end_time TIMESTAMP, status_code VARCHAR, status_message VARCHAR, attributes MAP(VARCHAR, VARCHAR), "
        'events STRUCT("name" VARCHAR, "timestamp" TIMESTAMP, attributes MAP(VARCHAR, VARCHAR))[])[]',
    ),
    (
        "assessments",
        'STRUCT(assessment_id VARCHAR, "name" VARCHAR, "source" STRUCT(source_type VARCHAR, '
        'source_id VARCHAR), feedback STRUCT("value" VARCHAR, "error" VARCHAR), expectation '
        'STRUCT("value" VARCHAR), rationale VARCHAR, metadata MAP(VARCHAR, VARCHAR), span_id VARCHAR)[]',
    ),
]


@pytest.fixture
def synced(store: Store, tmp_path: Path) -> TraceTableSync:
    table = TraceTableSync(store.client(), store.experiment_id, tmp_path / "traces.duckdb")
    report = table.sync()
    assert (report.added, report.total, report.full_rebuild) == (40, 40, True)
    return table


def test_schema_is_the_seeds(synced: TraceTableSync) -> None:
    with duckdb.connect(str(synced.path), read_only=True) as con:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'traces' ORDER BY ordinal_position"
        ).fetchall()
    assert columns == [*SEED_COLUMNS, *NESTED_COLUMNS]


def test_sync_is_incremental(store: Store, synced: TraceTableSync) -> None:
    from analyze_experiment.agent.core.tracking import fluent_tracking
    from analyze_experiment.agent.simulation.scenarios import log_scenario

    again = synced.sync()
    assert (again.added, again.refreshed, again.total) == (0, 0, 40)
    log_scenario(store.client(), store.experiment_id, "support", 3, seed=99, start_ns=1_790_000_000 * 10**9)
    with fluent_tracking(store.uri):
        import mlflow

        old = store.traces.failed_ids()[0]  # type: ignore[attr-defined]
        mlflow.log_feedback(trace_id=old, name="reviewed", value=False, rationale="late review")
    later = synced.sync()
    assert (later.added, later.refreshed, later.total) == (3, 1, 43)
    engine = DuckDBEngine(synced.path)
    names = engine.execute(f"SELECT transform(assessments, a -> a.name) FROM traces WHERE trace_id = '{old}'")
    assert "reviewed" in names.rows[0][0]
    rebuilt = synced.sync(refresh=True)
    assert (rebuilt.added, rebuilt.total, rebuilt.full_rebuild) == (43, 43, True)


def test_census_matches_the_planted_truth(store: Store, synced: TraceTableSync) -> None:
    census = compute_census(DuckDBEngine(synced.path), discovery=False)
    truth = store.traces  # the simulation's own record of what it planted
    failed = len(truth.failed_ids())  # type: ignore[attr-defined]
    assert (census.trace_count, census.error_count) == (40, failed)
    assert census.ok_count == 40 - failed and census.error_rate == round(failed / 40, 6)
    tools = {row["name"]: row for row in census.sections["tools"]}
    assert tools["lookup_order"]["errors"] == failed
    buckets = {row["error_class"]: row for row in census.sections["error_buckets"]}
    assert buckets["timeout"]["traces"] == failed and buckets["timeout"]["slow_failures"] == failed
    apologetic = len(truth.affected["apology_topic"])  # type: ignore[attr-defined]
    assert census.sections["quality_markers"]["apology"] == apologetic
    assert sum(day["traces"] for day in census.sections["traffic_by_day"]) == 40
    latencies = sorted(
        t.info.execution_duration
        for t in store.client().search_traces(locations=[store.experiment_id], max_results=100, include_spans=False)
    )
    assert census.latency_ms["p50"] == pytest.approx((latencies[19] + latencies[20]) / 2)


def test_every_census_number_comes_from_a_recorded_query(cli: CliRunner, store: Store) -> None:
    run_id = cli.ok("insights", "create-analysis", "--name", "census", "-o", "json").json()["run_id"]
    census = cli.ok("insights", "create-baseline-census", "-r", run_id, "-o", "json").json()
    queries = {q["result_summary"]: q["query"] for q in census["queries"]}
    rerun = cli.ok("traces", "execute-sql", "--sql", queries["totals"], "-o", "json").json()["result"]
    totals = dict(zip(rerun["columns"], rerun["rows"][0], strict=True))
    assert (totals["trace_count"], totals["error_count"]) == (census["trace_count"], census["error_count"])
    tools = cli.ok("traces", "execute-sql", "--sql", queries["tools"], "-o", "json").json()["result"]
    assert [dict(zip(tools["columns"], row, strict=True)) for row in tools["rows"]] == census["sections"]["tools"]


def test_execute_sql_links_results_and_records_lineage(cli: CliRunner, store: Store) -> None:
    run_id = cli.ok("insights", "create-analysis", "--name", "sql", "-o", "json").json()["run_id"]
    cli.ok("insights", "create-baseline-census", "-r", run_id)
    cli.ok(
        "insights",
        "create-hypothesis",
        "-r",
        run_id,
        "--statement",
        "lookups time out",
        "--rationale",
        "r",
        "--testing-plan",
        "Q1 then Q2",
        "--sql-query",
        '{"id": "Q1", "query": "SELECT 1"}',
    )
    sql = "SELECT trace_id, execution_duration_ms FROM traces WHERE state = 'ERROR'"
    outcome = cli.ok("traces", "execute-sql", "--sql", sql, "-r", run_id, "-H", "H1", "-o", "json").json()
    failed = set(store.traces.failed_ids())  # type: ignore[attr-defined]
    assert {row[0] for row in outcome["result"]["rows"]} == failed
    assert outcome["linked_traces"] == len(failed) and outcome["recorded_as"] == "H1/Q2"
    linked = store.client().search_traces(locations=[store.experiment_id], run_id=run_id, include_spans=False)
    assert {t.info.trace_id for t in linked} == failed
    lineage = cli.ok("insights", "get-hypothesis", "-r", run_id, "-H", "H1", "-o", "json").json()["sql_queries"]
    assert lineage[1]["query"] == sql and lineage[1]["result_summary"].startswith(f"{len(failed)} rows")


def test_execute_sql_refusals(cli: CliRunner) -> None:
    assert "only table is `traces`" in cli.refused("traces", "execute-sql", "--sql", "SELECT * FROM users")
    assert "needs --run-id" in cli.refused("traces", "execute-sql", "--sql", "SELECT 1", "-H", "H1")
    result = cli("traces", "execute-sql", "--sql", "DROP TABLE traces", "-o", "json")
    assert result.exit_code == 2 and json.loads(result.stdout)["error"]["kind"] == "sql_refused"


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
    reason="--engine spark needs pyspark and Java",
)
def test_execute_sql_on_spark(cli: CliRunner, store: Store) -> None:
    sql = "SELECT count_if(state = 'ERROR') AS errors, count(*) AS traces FROM traces"
    on_spark = cli.ok("traces", "execute-sql", "--engine", "spark", "--sql", sql, "-o", "json").json()["result"]
    on_duckdb = cli.ok("traces", "execute-sql", "--sql", sql, "-o", "json").json()["result"]
    assert on_spark["engine"] == "spark" and on_spark["rows"] == on_duckdb["rows"] == [
        [len(store.traces.failed_ids()), 40]
    ]  # type: ignore[attr-defined]


def test_census_reports_tokens_and_cost(store: Store, synced: TraceTableSync) -> None:
    census = compute_census(DuckDBEngine(synced.path), discovery=False)
    (usage,) = census.sections["token_usage"]
    answered = len(store.traces.ok_ids())  # type: ignore[attr-defined]
    assert (usage["model"], usage["calls"]) == ("gpt-4o-mini", answered)
    expected_cost = usage["input_tokens"] * 1.5e-7 + usage["output_tokens"] * 6e-7
    assert usage["cost_usd"] == pytest.approx(expected_cost, abs=1e-6)


def test_sync_takes_late_old_traces_and_drops_deleted_ones(store: Store, synced: TraceTableSync) -> None:
    """A trace whose timestamp is older than everything synced (a backfill, a slow exporter) still
    arrives; a trace deleted from the store leaves the table."""
    from analyze_experiment.agent.simulation.scenarios import log_scenario

    log_scenario(store.client(), store.experiment_id, "travel", 2, seed=5, start_ns=1_000_000_000 * 10**9)
    gone = store.traces.ok_ids()[0]  # type: ignore[attr-defined]
    store.client().delete_traces(store.experiment_id, trace_ids=[gone])
    report = synced.sync()
    assert (report.added, report.total) == (2, 41)
    engine = DuckDBEngine(synced.path)
    assert engine.execute(f"SELECT count(*) FROM traces WHERE trace_id = '{gone}'").rows == [[0]]
    assert engine.execute("SELECT count(*) FROM traces WHERE year(request_time) < 2002").rows == [[2]]
