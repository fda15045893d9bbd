"""Databricks cannot be reached from here: check how queries are built and how failures read."""

from __future__ import annotations

import importlib.util

import pytest

from analyze_experiment.agent.core.errors import ConfigurationError, UserError
from analyze_experiment.agent.core.settings import load_settings
from analyze_experiment.agent.core.traces.databricks_engine import DatabricksEngine, build_query
from analyze_experiment.agent.core.traces.sql import SqlRefused

TOKEN = "dapi0123456789abcdef0123456789abcdef"


def settings(host: str = "https://example.cloud.databricks.com"):
    return load_settings({"MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_HOST": host, "DATABRICKS_TOKEN": TOKEN})


def test_traces_points_at_the_configured_table() -> None:
    built = build_query("SELECT s.name FROM traces LATERAL VIEW explode(spans) t AS s", "main.obs.agent_traces")
    assert built == "SELECT s.name FROM main.obs.agent_traces AS traces LATERAL VIEW EXPLODE(spans) t AS s"


def test_aliases_and_ctes_survive() -> None:
    built = build_query(
        "WITH e AS (SELECT * FROM traces t WHERE t.state = 'ERROR') SELECT count(*) FROM e", "main.obs.agent_traces"
    )
    assert "FROM main.obs.agent_traces AS t WHERE t.state = 'ERROR'" in built
    assert built.endswith("SELECT COUNT(*) FROM e")


def test_checks_run_before_anything_is_sent() -> None:
    with pytest.raises(SqlRefused):
        build_query("DROP TABLE traces", "main.obs.agent_traces")
    with pytest.raises(SqlRefused):
        build_query("SELECT * FROM main.other.secrets", "main.obs.agent_traces")


@pytest.mark.parametrize("name", ["traces", "main.traces", "main.obs.t; DROP TABLE x", "a.b.c.d"])
def test_table_name_must_be_three_parts(name: str) -> None:
    with pytest.raises(ConfigurationError, match=r"catalog\.schema\.table"):
        build_query("SELECT 1 FROM traces", name)


def test_missing_configuration_is_named() -> None:
    with pytest.raises(ConfigurationError, match="MLFLOW_TRACE_TABLE_NAME"):
        DatabricksEngine(settings(), None, "wh")
    with pytest.raises(ConfigurationError, match="DATABRICKS_WAREHOUSE_ID"):
        DatabricksEngine(settings(), "main.obs.t", None)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("databricks.sql") is None, reason="needs the Databricks client: uv sync --group engines"
)
def test_unreachable_warehouse_is_a_plain_error_without_the_token() -> None:
    engine = DatabricksEngine(settings("https://127.0.0.1:9"), "main.obs.t", "abc123", timeout_s=5)
    with pytest.raises(UserError, match="Databricks SQL failed") as failed:
        engine.execute("SELECT count(*) FROM traces")
    assert TOKEN not in failed.value.message
