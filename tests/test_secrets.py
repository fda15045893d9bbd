"""Planted credentials (in the environment, and leaked inside the analysed traces) appear in no output,
log, artifact, report, checkpoint, model request or analyst trace after a full LLM-driven analysis,
a paused one and the commands people run around them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.helpers import cli_process
from tests.openai_server import openai_server

PLANTED = {
    "OPENAI_API_KEY": "sk-planted-" + "a1" * 12,
    "SLACK_BOT_TOKEN": "xoxb-planted-" + "b2" * 10,
    "SLACK_SIGNING_SECRET": "signing-planted-" + "c3" * 10,
    "SLACK_APP_TOKEN": "xapp-planted-" + "d4" * 10,
    "DATABRICKS_TOKEN": "dapi" + "e5" * 16,
    "MLFLOW_TRACKING_TOKEN": "mlflow-token-planted-" + "f6" * 8,
}
# credentials a traced agent leaked into its own requests: quoting the traces must not repeat them
LEAKED = ["sk-leaked-" + "9z" * 12, "xoxb-leaked-" + "8y" * 10]


def _leaky_experiment(store: Store, root: Path) -> str:
    import json as jsonlib

    from analyze_experiment.agent.simulation.scenarios import generate
    from analyze_experiment.agent.simulation.writer import write_traces

    client = store.client()
    experiment_id = client.create_experiment("leaky", artifact_location=str(root / "artifacts"))
    run = generate("support", experiment_id, 60, seed=4)
    for trace in run.traces:
        root_span = trace["data"]["spans"][0]
        question = jsonlib.loads(root_span["attributes"]["mlflow.spanInputs"])
        question["question"] = f"{question.get('question', '')} (my key is {LEAKED[0]}, slack {LEAKED[1]})"
        root_span["attributes"]["mlflow.spanInputs"] = jsonlib.dumps(question)
    write_traces(client, experiment_id, run.traces)
    return experiment_id


def _found(secrets: list[str], name: str, data: bytes) -> list[str]:
    return [f"{secret[:12]}... in {name}" for secret in secrets if secret.encode() in data]


@pytest.mark.slow
def test_no_planted_or_leaked_secret_survives_anywhere(store: Store, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    experiment_id = _leaky_experiment(store, tmp_path)
    home = tmp_path / "home"
    planted = list(PLANTED.values())
    outputs: dict[str, bytes] = {}
    with openai_server() as (base_url, server):
        env = {**PLANTED, "OPENAI_BASE_URL": base_url}
        report = tmp_path / "report.md"
        commands = {
            "doctor": ["doctor", "--experiment-id", experiment_id],
            "run": [
                "run",
                "--experiment-id",
                experiment_id,
                "--model",
                "gpt-4o-mini",
                "--approve",
                "auto",
                "--report",
                str(report),
                "-o",
                "json",
            ],
            "traces get": ["traces", "get", "-t", "{trace}"],
            "traces execute-sql": [
                "traces",
                "execute-sql",
                "-x",
                experiment_id,
                "-s",
                "SELECT request FROM traces WHERE request rlike 'sk-leaked' LIMIT 3",
            ],
        }
        run_id = trace_id = ""
        for name, template in commands.items():
            args = [a.replace("{trace}", trace_id) for a in template]
            done = cli_process(store.uri, home, *args, env=env)
            assert done.returncode == 0, f"{name}: {done.stderr}"
            outputs[name] = (done.stdout + done.stderr).encode()
            if name == "run":
                run_id = json.loads(done.stdout)["run_id"]
                trace_id = (
                    MlflowClient(store.uri).search_traces(locations=[experiment_id], max_results=1)[0].info.trace_id
                )
        bodies = json.dumps(server.requests).encode()
    # the model endpoint is down: the pause message names no credential either
    paused = cli_process(
        store.uri,
        home,
        "run",
        "--experiment-id",
        experiment_id,
        "--model",
        "gpt-4o-mini",
        "--approve",
        "auto",
        env={**env, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert paused.returncode == 75, paused.stderr
    outputs["paused run"] = (paused.stdout + paused.stderr).encode()

    problems: list[str] = []
    for name, data in outputs.items():
        problems += _found(planted + LEAKED, f"output of {name}", data)
    problems += _found(planted + LEAKED, "requests to the model", bodies)
    problems += _found(planted + LEAKED, "the report", report.read_bytes())
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        # the store and the local copy of the traces hold the traces themselves, leaks included
        holds_traces = path.suffix in {".db", ".duckdb", ".wal"} or path.name.endswith((".db-wal", ".duckdb.wal"))
        problems += _found(
            planted if holds_traces else planted + LEAKED, str(path.relative_to(tmp_path)), path.read_bytes()
        )
    client = MlflowClient(store.uri)
    analyst = client.get_experiment_by_name("analyze-experiment-analyst")
    assert analyst is not None
    for trace in client.search_traces(locations=[analyst.experiment_id], max_results=1000):
        problems += _found(planted + LEAKED, f"analyst trace {trace.info.trace_id}", trace.to_json().encode())
    run = client.get_run(run_id)
    problems += _found(planted + LEAKED, "run params and tags", json.dumps([run.data.params, run.data.tags]).encode())
    assert not problems, "\n".join(problems)
    assert b"***" in outputs["traces execute-sql"]  # masked, not dropped
