"""The same workflow against a real `mlflow server` on 127.0.0.1: runs, artifacts, links and issues
all go through MLflow's REST API and its artifact proxy."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner
from tests.mlflow_server import free_port, start_server, stop_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow-server")]  # one server, on one test worker


@pytest.fixture(scope="module")
def server(template_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(template_store.db_path, root / "mlflow.db")  # already migrated: starts faster
    port = free_port()
    process = start_server(root, port)
    yield f"http://127.0.0.1:{port}"
    stop_server(process)


@pytest.fixture(scope="module")
def served_experiment(server: str) -> tuple[str, object]:
    from mlflow import MlflowClient

    from analyze_experiment.agent.simulation.scenarios import log_scenario

    experiment_id = MlflowClient(server).create_experiment("served-support-agent")
    return experiment_id, log_scenario(MlflowClient(server), experiment_id, "support", 12, seed=5)


def test_workflow_over_rest(
    server: str, served_experiment: tuple[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient
    from mlflow.tracing.client import TracingClient

    experiment_id, simulation = served_experiment
    cli = CliRunner(capsys)
    base = ("--tracking-uri", server)
    run_id = cli.ok(*base, "insights", "create-analysis", "-x", experiment_id, "--name", "served", "-o", "json").json()[
        "run_id"
    ]
    assert MlflowClient(server).get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    census = cli.ok(*base, "insights", "create-baseline-census", "-r", run_id, "-o", "json").json()
    assert census["trace_count"] == 12
    cli.ok(
        *base,
        "insights",
        "create-hypothesis",
        "-r",
        run_id,
        "--statement",
        "order lookups time out",
        "--rationale",
        "census",
        "--testing-plan",
        "Q1",
    )
    bad = simulation.failed_ids()[0]  # type: ignore[attr-defined]
    evidence = json.dumps({"trace_id": bad, "rationale": "TimeoutError after 10s", "supports": True})
    cli.ok(
        *base,
        "insights",
        "update-hypothesis",
        "-r",
        run_id,
        "-H",
        "H1",
        "--status",
        "VALIDATED",
        "--evidence",
        evidence,
    )
    issue = cli.ok(
        *base,
        "insights",
        "create-issue",
        "-r",
        run_id,
        "-H",
        "H1",
        "--severity",
        "HIGH",
        "--title",
        "Order lookup tool times out often",
        "--description",
        "d",
        "--evidence",
        evidence,
        "-o",
        "json",
    ).json()

    native = TracingClient(server)._get_issue(issue["native_issue_id"])
    assert native.source_run_id == run_id
    client = MlflowClient(server)
    referenced = client.search_traces(locations=[experiment_id], filter_string=f"issue.id = '{native.issue_id}'")
    assert [t.info.trace_id for t in referenced] == [bad]
    linked = client.search_traces(locations=[experiment_id], run_id=run_id, include_spans=False)
    assert {t.info.trace_id for t in linked} == {bad}
    listed = cli.ok(*base, "insights", "list-hypotheses", "-r", run_id, "-o", "json").json()
    assert [(h["id"], h["status"]) for h in listed] == [("H1", "VALIDATED")]

    searched = cli.ok(*base, "traces", "search", "-x", experiment_id, "-n", "4", "-r", run_id, "-o", "json").json()
    linked = client.search_traces(locations=[experiment_id], run_id=run_id, include_spans=False)
    assert {t["trace_id"] for t in searched["traces"]} | {bad} == {t.info.trace_id for t in linked}


class OlderServerProxy(BaseHTTPRequestHandler):
    """Forwards to the real server, except the Issue API, which it does not have (like MLflow < 3.17)."""

    upstream = ""

    def _forward(self) -> None:
        if "/mlflow/issues" in self.path:
            body = json.dumps({"error_code": "ENDPOINT_NOT_FOUND", "message": "no such endpoint"}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
        request = urllib.request.Request(self.upstream + self.path, data=data, method=self.command, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, reply, reply_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, reply, reply_headers = error.code, error.read(), error.headers
        self.send_response(status)
        for key, value in reply_headers.items():
            if key.lower() not in {"content-length", "transfer-encoding", "connection", "date", "server"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass


def test_older_server_without_issue_api(server: str, served_experiment: tuple[str, object]) -> None:
    from mlflow import MlflowClient

    from analyze_experiment.agent.core.insights.models import Census, Evidence, HypothesisStatus, Severity
    from analyze_experiment.agent.core.insights.service import Insights

    handler = type("Proxy", (OlderServerProxy,), {"upstream": server})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{proxy.server_address[1]}"
        experiment_id, simulation = served_experiment
        notices: list[str] = []
        insights = Insights(MlflowClient(uri), notify=notices.append)
        run_id = insights.create_analysis(experiment_id, "older server").run_id
        insights.save_census(run_id, Census(trace_count=12, ok_count=8, error_count=4, error_rate=0.33))
        seen = [Evidence(trace_id=simulation.trace_ids()[0], rationale="seen", supports=True)]  # type: ignore[attr-defined]
        for n in (1, 2):
            insights.create_hypothesis(run_id, statement=f"claim {n}", rationale="r", testing_plan="p")
            insights.update_hypothesis(run_id, f"H{n}", status=HypothesisStatus.VALIDATED, evidence=seen)
            issue = insights.create_issue(
                run_id,
                hypothesis_id=f"H{n}",
                title=f"Claim number {n} needs a fix",
                description="d",
                severity=Severity.LOW,
                evidence=seen,
            )
            assert issue.native_issue_id is None
        assert len(notices) == 1 and "no native MLflow issues" in notices[0]
        assert [i.id for i in insights.list_issues(run_id)] == ["I1", "I2"]
    finally:
        proxy.shutdown()
