"""The tracking server goes away mid-analysis and comes back: MLflow's HTTP client retries, the
analysis pauses with a plain message and exit 75, and a resume after the restart finishes it with
nothing half-written and nothing twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.helpers import cli_popen, cli_process, json_of, wait_for_file
from tests.mlflow_server import free_port, start_server, stop_server

pytestmark = pytest.mark.slow
# MLflow's own HTTP retries (default 7 with backoff factor 2, minutes in all), shortened for the test
QUICK_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}


def test_server_stopped_mid_analysis_pauses_it_and_resume_after_restart_finishes(
    template_store: Store, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from analyze_experiment.agent.core.insights.models import AnalysisStatus, HypothesisStatus
    from analyze_experiment.agent.core.insights.service import Insights
    from analyze_experiment.agent.simulation.scenarios import log_scenario

    root = tmp_path / "served"
    root.mkdir()
    shutil.copyfile(template_store.db_path, root / "mlflow.db")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(root, port)
    home, gate = tmp_path / "home", tmp_path / "gate"
    gate.mkdir()
    try:
        experiment_id = MlflowClient(uri).create_experiment("served-support")
        log_scenario(MlflowClient(uri), experiment_id, "support", 40, seed=3)
        # the first hypothesis test waits at its start while the server is stopped under it
        env = {
            **QUICK_RETRIES,
            "ANALYZE_EXPERIMENT_FAILPOINTS": "node.test_hypothesis=pause",
            "ANALYZE_EXPERIMENT_FAILPOINT_DIR": str(gate),
        }
        process = cli_popen(uri, home, "run", "--experiment-id", experiment_id, "--approve", "auto", env=env)
        wait_for_file(gate / "node.test_hypothesis.reached", process)
        stop_server(server)
        (gate / "node.test_hypothesis.go").touch()
        _, err = process.communicate(timeout=600)
        assert process.returncode == 75, err
        (line,) = [line for line in err.splitlines() if line.startswith("error:")]
        assert f"the tracking store at {uri} stopped answering" in line
        thread = line.rsplit("resume ", 1)[1].strip("`")

        down = cli_process(uri, home, "resume", thread, "--approve", "auto", env=QUICK_RETRIES)
        assert down.returncode != 0 and "nothing answers at" in down.stderr  # still down: said at once

        server = start_server(root, port)  # same store, same address
        done = json_of(cli_process(uri, home, "resume", thread, "--approve", "auto", "-o", "json"))
        insights = Insights(MlflowClient(uri))
        analysis = insights.get_analysis(done["run_id"])
        assert analysis.status is AnalysisStatus.COMPLETED and done["report"]
        assert [a.stage for a in analysis.approvals] == ["description", "hypotheses", "issues"]
        hypotheses = insights.list_hypotheses(done["run_id"])
        assert hypotheses and not [h for h in hypotheses if h.status is HypothesisStatus.TESTING]
        assert len({h.statement for h in hypotheses}) == len(hypotheses)
        issues = insights.list_issues(done["run_id"])
        assert len({i.hypothesis_id for i in issues}) == len(issues)
        runs = MlflowClient(uri).search_runs([experiment_id], filter_string="tags.`insights.analysis` = 'true'")
        assert [r.info.run_id for r in runs] == [done["run_id"]], json.dumps([r.info.run_id for r in runs])
    finally:
        stop_server(server)
