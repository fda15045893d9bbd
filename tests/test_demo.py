"""`demo` on a fresh machine: the embedded store under the home directory, reused when unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import CliRunner


@pytest.mark.slow
def test_demo_in_the_embedded_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = CliRunner(capsys)
    made = cli.ok("demo", "--traces", "6", "-o", "json").json()
    assert made["created"] and made["traces"] == 6
    home = tmp_path / "home"
    assert (home / "mlflow.db").is_file()
    from mlflow import MlflowClient

    experiment = MlflowClient(f"sqlite:///{home / 'mlflow.db'}").get_experiment(made["experiment_id"])
    assert experiment.artifact_location.startswith(str(home))
    assert not (tmp_path / "mlruns").exists()  # nothing written to the working directory
    again = cli.ok("demo", "--traces", "6", "-o", "json").json()
    assert (again["created"], again["experiment_id"]) == (False, made["experiment_id"])
    report = cli.ok("doctor", "--experiment-id", made["experiment_id"], "-o", "json").json()
    assert report["trace_count"] == 6 and report["default_store"]
    rebuilt = cli.ok("demo", "--traces", "4", "-o", "json").json()
    assert rebuilt["created"] and rebuilt["experiment_id"] != made["experiment_id"]
