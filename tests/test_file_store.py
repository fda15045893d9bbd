"""File stores: readable, but MLflow cannot link traces to runs there, so analyses are refused with
the way out (MLflow's own migration to SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import CliRunner


@pytest.mark.slow
def test_file_store_reads_but_refuses_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    from analyze_experiment.agent.simulation.scenarios import log_scenario

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this test's own writes
    store = tmp_path / "mlruns"
    client = MlflowClient(store.as_uri())
    experiment_id = client.create_experiment("file-store")
    log_scenario(client, experiment_id, "support", 6, seed=3)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # the tool must manage on its own

    cli = CliRunner(capsys)
    report = cli.ok("--tracking-uri", str(store), "doctor", "-x", experiment_id, "-o", "json").json()
    assert report["store_kind"] == "file" and report["trace_count"] == 6
    message = cli.refused(
        "--tracking-uri", str(store), "insights", "create-analysis", "-x", experiment_id, "--name", "n"
    )
    assert "mlflow migrate-filestore" in message
    assert client.search_runs([experiment_id]) == []
    run = cli.refused("--tracking-uri", str(store), "run", "-x", experiment_id, "--approve", "auto")
    assert "mlflow migrate-filestore" in run
    assert cli.ok("--tracking-uri", str(store), "list", "-o", "json").json() == []  # no thread for a refused run
