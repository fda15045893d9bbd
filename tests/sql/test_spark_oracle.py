"""The conformance suite again, on local Spark: the engine Databricks runs, so the reference answer."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from analyze_experiment.agent.core.traces.spark_engine import SparkEngine, export_parquet
from tests.sql.fixture_table import build
from tests.sql.test_conformance import CASES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("spark"),  # one Spark session, on one test worker
    pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="pyspark is not installed"),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17+ and there is no java on PATH"),
]


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkEngine:
    root = tmp_path_factory.mktemp("spark")
    return SparkEngine(export_parquet(build(root / "traces.duckdb"), root / "traces.parquet"), timeout_s=120)


@pytest.mark.parametrize(("name", "sql", "expected"), CASES, ids=[c[0] for c in CASES])
def test_spark_gives_the_same_answer(spark: SparkEngine, name: str, sql: str, expected: list[list[object]]) -> None:
    result = spark.execute(sql)
    assert result.rows == expected, f"{name}: ran on Spark as {result.executed_sql}"


def test_spark_refuses_what_duckdb_refuses(spark: SparkEngine) -> None:
    from analyze_experiment.agent.core.traces.sql import SqlRefused

    with pytest.raises(SqlRefused):
        spark.execute("SELECT * FROM parquet.`/etc`")


def test_row_cap_on_spark(tmp_path: Path, spark: SparkEngine) -> None:
    capped = SparkEngine(spark.parquet, row_cap=2)
    result = capped.execute("SELECT trace_id FROM traces ORDER BY trace_id")
    assert result.rows == [["tr-1"], ["tr-2"]] and result.rows_cut == 4


def test_a_derived_table_on_spark_holds_the_querys_rows(spark: SparkEngine) -> None:
    per_state = "SELECT state, count(*) AS n FROM traces GROUP BY state ORDER BY state"
    with spark.derived("SELECT trace_id, state, size(spans) AS spans FROM traces") as derived:
        assert derived.execute(per_state).rows == spark.execute(per_state).rows
        assert derived.execute("SELECT sum(spans) AS n FROM traces").rows == [
            [sum(row[0] for row in spark.execute("SELECT size(spans) AS n FROM traces").rows)]
        ]
        scratch = derived.parquet
    assert not scratch.exists()
