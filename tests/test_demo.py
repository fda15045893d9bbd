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


def _experiments(uri: str) -> dict[str, tuple[str, str]]:
    """Every experiment in the store, deleted ones too: id -> (name, lifecycle stage)."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    found = MlflowClient(uri).search_experiments(view_type=ViewType.ALL)
    return {e.experiment_id: (e.name, e.lifecycle_stage) for e in found}


@pytest.mark.slow
def test_another_size_or_seed_keeps_the_existing_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Asking for other traffic used to rename and delete the demo experiment, analyses and all."""
    cli = CliRunner(capsys)
    uri = f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    first = cli.ok("demo", "--traces", "4", "-o", "json").json()
    assert (first["name"], first["created"], first["traces"]) == ("demo-support-4-s7", True, 4)
    analysis = cli.ok("insights", "create-analysis", "-x", first["experiment_id"], "--name", "mine", "-o", "json")
    before = _experiments(uri)

    other_size = cli.ok("demo", "--traces", "3").stdout.splitlines()[0]
    other_seed = cli.ok("demo", "--traces", "4", "--seed", "8", "-o", "json").json()
    assert other_size.startswith("created experiment ") and "(demo-support-3-s7: 3 traces)" in other_size
    assert (other_seed["name"], other_seed["created"]) == ("demo-support-4-s8", True)

    after = _experiments(uri)
    assert {k: after[k] for k in before} == before  # the first demo is untouched, and nothing was deleted
    assert {stage for _, stage in after.values()} == {"active"}
    from mlflow import MlflowClient

    run = MlflowClient(uri).get_run(analysis.json()["run_id"])
    assert (run.info.experiment_id, run.info.lifecycle_stage) == (first["experiment_id"], "active")

    again = cli.ok("demo", "--traces", "4").stdout.splitlines()[0]
    assert again.startswith(f"reused experiment {first['experiment_id']} (demo-support-4-s7: 4 traces)")
    assert _experiments(uri) == after


@pytest.mark.slow
def test_an_interrupted_demo_is_not_reused(tmp_path: Path) -> None:
    """Killed after logging, before taking its name: the next demo starts over instead of reusing half."""
    from tests.helpers import cli_process, json_of

    home, uri = tmp_path / "home", f"sqlite:///{tmp_path / 'store.db'}"
    killed = cli_process(uri, home, "demo", "--traces", "3", env={"ANALYZE_EXPERIMENT_FAILPOINTS": "demo.logged=kill"})
    assert killed.returncode == -9
    assert "demo-support-3-s7" not in {name for name, _ in _experiments(uri).values()}
    made = json_of(cli_process(uri, home, "demo", "--traces", "3", "-o", "json"))
    assert (made["name"], made["created"], made["traces"]) == ("demo-support-3-s7", True, 3)


@pytest.mark.slow
def test_demo_creates_a_new_sqlite_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = CliRunner(capsys)
    db = tmp_path / "stores" / "team" / "new.db"
    made = cli.ok("demo", "--tracking-uri", f"sqlite:///{db}", "--traces", "3", "-o", "json").json()
    assert made["created"] and db.is_file()
    report = cli.ok("--tracking-uri", f"sqlite:///{db}", "doctor", "-x", made["experiment_id"], "-o", "json").json()
    assert report["trace_count"] == 3


def test_demo_refuses_a_store_it_cannot_create(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the store's directory would go")
    db = blocker / "sub" / "new.db"
    message = CliRunner(capsys).refused("demo", "--tracking-uri", f"sqlite:///{db}", "--traces", "3")
    assert f"cannot create the SQLite store {db}" in message and "--tracking-uri sqlite:///" in message
    assert blocker.read_text().startswith("a file") and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_commands_that_read_name_the_missing_store_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = CliRunner(capsys).refused("--tracking-uri", "sqlite:///relative/mlflow.db", "doctor")
    assert f"no MLflow store at {tmp_path / 'relative' / 'mlflow.db'} (no such file)" in message


def test_demo_refuses_a_file_store_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Demo traffic in a file store could never be analysed there: say so before writing any of it."""
    store = tmp_path / "team-runs"
    store.mkdir()
    cli = CliRunner(capsys)
    for uri in (store.as_uri(), str(store)):
        message = cli.refused("demo", "--tracking-uri", uri, "--traces", "3")
        assert f"the file store {store} cannot link traces" in message
        assert f"`mlflow migrate-filestore --source {store} --target sqlite:///mlflow.db`" in message
    assert list(store.iterdir()) == []


def test_the_file_store_hint_names_the_store_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow's migration looks for `mlruns` inside --source: naming the parent finds the wrong store, or none."""
    from mlflow import MlflowClient

    store = tmp_path / "team-runs"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this test's own write
    experiment_id = MlflowClient(store.as_uri()).create_experiment("file-store")
    message = CliRunner(capsys).refused(
        "--tracking-uri", str(store), "insights", "create-analysis", "-x", experiment_id, "--name", "n"
    )
    assert f"--source {store} --target" in message


def test_file_store_paths() -> None:
    from analyze_experiment.agent.core.tracking import file_store_path

    assert file_store_path("file:///srv/my%20runs") == Path("/srv/my runs")
    assert file_store_path("databricks") is None and file_store_path("sqlite:///x.db") is None


@pytest.mark.slow
def test_a_deleted_demo_is_left_to_its_owner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Neither brought back nor replaced behind the user's back: the refusal says how to restore it."""
    import os
    import subprocess
    import sys

    from mlflow import MlflowClient

    cli = CliRunner(capsys)
    made = cli.ok("demo", "--traces", "2", "-o", "json").json()
    uri = f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    MlflowClient(uri).delete_experiment(made["experiment_id"])
    message = cli.refused("demo", "--traces", "2")
    assert "is deleted" in message and len(_experiments(uri)) == 2  # Default and the deleted demo: nothing new
    restore = message.split("`")[1].replace(" mlflow ", f" {Path(sys.executable).with_name('mlflow')} ")
    subprocess.run(
        restore, shell=True, check=True, capture_output=True, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    )
    again = cli.ok("demo", "--traces", "2", "-o", "json").json()
    assert (again["experiment_id"], again["created"], again["traces"]) == (made["experiment_id"], False, 2)
