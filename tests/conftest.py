"""Shared fixtures: a real SQLite MLflow store with simulated traces, built once and copied per test.

Migrating a fresh SQLite store costs seconds, so the session builds one template (migrated, with an
experiment of simulated traces) and each test gets its own copy of the database file. Artifacts of
the template live in a session directory; runs a test creates write under their own run ids.
"""

from __future__ import annotations

import os

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["MLFLOW_MODEL_CATALOG_URI"] = ""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import CliRunner

TEMPLATE_TRACES = 40


@dataclass(frozen=True)
class Store:
    uri: str
    experiment_id: str
    db_path: Path
    traces: object  # analyze_experiment.agent.simulation.scenarios.ScenarioRun

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(self.uri)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The eval gate takes most of a full run: scheduled first, the other tests run beside it instead of
    after it. The rest keep their order, so the test queued behind the gate on its worker is a quick one."""
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from mlflow import MlflowClient

    from analyze_experiment.agent.simulation.scenarios import log_scenario

    root = tmp_path_factory.mktemp("template-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("support-agent", artifact_location=str(root / "artifacts"))
    simulation = log_scenario(client, experiment_id, "support", TEMPLATE_TRACES, seed=11)
    return Store(uri, experiment_id, root / "mlflow.db", simulation)


@pytest.fixture
def store(template_store: Store, tmp_path: Path) -> Store:
    db = tmp_path / "mlflow.db"
    shutil.copyfile(template_store.db_path, db)
    return Store(f"sqlite:///{db}", template_store.experiment_id, db, template_store.traces)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's settings or home directory, and none leaks its own."""
    for name in list(os.environ):
        if name.startswith(("MLFLOW_TRACKING", "MLFLOW_EXPERIMENT", "DATABRICKS_", "OPENAI_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANALYZE_EXPERIMENT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def cli(store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CliRunner:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", store.experiment_id)
    return CliRunner(capsys)


@pytest.fixture
def insights(store: Store):
    from analyze_experiment.agent.core.insights.service import Insights

    return Insights(store.client())
