"""`evals run`: the quality gate on committed and held-out scenarios, random agents and negative
controls, scoring your own labels, and record/replay of the LLM analyst's exchanges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from analyze_experiment.evals.gate import MAX_FALSE_PER_CONTROL, POOLED, THRESHOLDS
from tests.conftest import Store
from tests.helpers import CliRunner
from tests.openai_server import openai_server

API_KEY = "sk-test-" + "r3c0rd" * 4


@pytest.mark.slow
@pytest.mark.longest
def test_offline_analyst_holds_the_gate_on_scenarios_random_agents_and_controls(cli: CliRunner, store: Store) -> None:
    """CI: committed scenarios and a held-out draw of each, case by case; 20 negative controls (with 5,
    one chance slice in one of them is 0.2 false issues per control, over the gate's 0.1: the average
    needs more of them to be measured); 30 random agents with random planted problems from seeds derived
    from the commit hash, pooled."""
    result = cli(
        "evals",
        "run",
        "--gate",
        "--seeds",
        "9001",
        "--jobs",
        "2",
        "--random-seeds",
        "commit",
        "--controls",
        "20",
        "-o",
        "json",
    )
    body, _ = json.JSONDecoder().raw_decode(result.stdout)  # a failed gate adds its error document after it
    summary = body["summary"]
    assert result.exit_code == 0 and body["gate"] == [], body["gate"]
    scores = body["cases"]
    cases = {s["case"] for s in scores}
    assert {"support", "travel", "data", "injection"} <= cases and any("@" in c for c in cases)  # held out too
    assert summary["random_draws"] == 30 and summary["controls"] == 20 and body["seeds"] == "commit"
    for s in scores:
        assert s["violations"] == [] and s["census_exact"] is True, s["case"]
        if s["source"] in {"recording", "held_out"}:
            for name, floor in THRESHOLDS.items():
                assert s[name] >= floor, (s["case"], name, s[name])
            assert s["hypotheses"]["rejected"] >= 1  # the analyst does refute things
    assert summary["recall"] >= POOLED["recall"] and summary["precision"] >= POOLED["precision"], summary
    assert summary["false_issues_per_control"] <= MAX_FALSE_PER_CONTROL
    logged = store.client().get_experiment_by_name("analyze-experiment-evals")
    assert logged is not None
    runs = store.client().search_runs([logged.experiment_id])
    assert len(runs) == len(scores) + 1  # one per case and the pooled scores
    # a control has no problem to recall, so not every case logs recall; every one logs its violations
    assert all("violations" in r.data.metrics or "pooled_recall" in r.data.metrics for r in runs)


@pytest.mark.slow
def test_your_own_labels_score_your_experiment_and_the_gate_fails_below(
    cli: CliRunner, store: Store, tmp_path: Path
) -> None:
    made_up = sorted(store.traces.ok_ids())[:5]  # type: ignore[attr-defined]
    labels = tmp_path / "expected.yaml"
    labels.write_text(
        yaml.safe_dump(
            {
                "traces": len(store.traces.trace_ids()),  # type: ignore[attr-defined]
                "problems": [{"kind": "made_up", "affected_trace_ids": made_up}],
            }
        )
    )
    result = cli("evals", "run", "--experiment-id", store.experiment_id, "--expected", str(labels), "--gate")
    assert result.exit_code == 1
    assert "issue_recall 0.00 < 0.8" in result.stderr
    missing = cli("evals", "run", "--experiment-id", store.experiment_id)
    assert missing.exit_code == 2 and "go together" in missing.stderr


@pytest.mark.slow
def test_record_then_replay_offline_gives_the_same_scores_and_no_secrets(
    cli: CliRunner, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = tmp_path / "llm-recording"
    labels = tmp_path / "expected.yaml"
    labels.write_text(
        yaml.safe_dump(
            {
                "traces": len(store.traces.trace_ids()),  # type: ignore[attr-defined]
                "problems": [{"kind": "tool_timeout", "affected_trace_ids": store.traces.failed_ids()}],
            }
        )
    )  # type: ignore[attr-defined]
    case = f"experiment-{store.experiment_id}"
    args = [
        "evals",
        "run",
        "--experiment-id",
        store.experiment_id,
        "--expected",
        str(labels),
        "--model",
        "gpt-4o-mini",
        "-o",
        "json",
    ]
    with openai_server() as (base_url, server):
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        recorded = cli(*args, "--record", str(recording))
        monkeypatch.delenv("OPENAI_BASE_URL")
        monkeypatch.delenv("OPENAI_API_KEY")
    assert recorded.exit_code == 0, recorded.stderr
    files = list((recording / case).glob("*.json"))
    assert len(files) >= len({json.dumps(r, sort_keys=True) for r in server.requests}) - 1
    assert all(API_KEY not in f.read_text() and "authorization" not in f.read_text().lower() for f in files)

    replayed = cli(*args, "--replay", str(recording))  # no server, no key: the recording answers
    assert replayed.exit_code == 0, replayed.stderr
    keys = ("issue_recall", "issue_precision", "evidence_precision", "violations", "hypotheses", "llm_calls", "tokens")
    assert {k: recorded.json()["cases"][0][k] for k in keys} == {k: replayed.json()["cases"][0][k] for k in keys}
    assert replayed.json()["cases"][0]["llm_calls"] > 0

    (tmp_path / "empty" / case).mkdir(parents=True)
    unseen = cli(*args, "--replay", str(tmp_path / "empty"))
    assert unseen.exit_code == 2 and "was not recorded" in unseen.stderr


def test_evals_refuse_a_missing_store_before_running_any_case(cli: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "mlflow.db"
    message = cli.refused(
        "--tracking-uri",
        f"sqlite:///{missing}",
        "evals",
        "run",
        "--no-held-out",
        "--random-draws",
        "0",
        "--controls",
        "0",
        "--scenario",
        "support",
    )
    assert "no MLflow store" in message and str(missing) in message
    assert not (tmp_path / "nowhere").exists()
    assert not (tmp_path / "home" / "evals").exists()  # refused before any case ran
