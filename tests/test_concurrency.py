"""Two processes writing to one analysis: nobody's write is lost, a stale write is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analyze_experiment.agent.core.errors import StaleWriteError
from analyze_experiment.agent.core.insights.documents import RunDocuments
from tests.conftest import Store
from tests.helpers import cli_popen, cli_process, json_of, wait_for_file

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

ROOT = Path(__file__).resolve().parents[1]


def start_workers(store: Store, run_id: str, jobs: list[tuple[str, list[str]]]) -> list[dict[str, int]]:
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.workers", store.uri, run_id, hypothesis_id, *trace_ids],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for hypothesis_id, trace_ids in jobs
    ]
    for worker in workers:  # every worker is warmed up and blocked on stdin...
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:  # ...then all are released at once
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.fixture
def analysis_with_two_hypotheses(insights, store: Store) -> str:
    from analyze_experiment.agent.core.insights.models import Census

    run_id = insights.create_analysis(store.experiment_id, "race").run_id
    insights.save_census(run_id, Census(trace_count=1, ok_count=1, error_count=0, error_rate=0))
    for statement in ("first claim", "second claim"):
        insights.create_hypothesis(run_id, statement=statement, rationale="r", testing_plan="p")
    return str(run_id)


def test_different_hypotheses_from_two_processes_lose_nothing(
    insights, store: Store, analysis_with_two_hypotheses: str
) -> None:
    run_id = analysis_with_two_hypotheses
    ids = store.traces.trace_ids()  # type: ignore[attr-defined]
    start_workers(store, run_id, [("H1", ids[:8]), ("H2", ids[8:16])])
    assert {e.trace_id for e in insights.get_hypothesis(run_id, "H1").evidence} == set(ids[:8])
    assert {e.trace_id for e in insights.get_hypothesis(run_id, "H2").evidence} == set(ids[8:16])


def test_same_hypothesis_from_two_processes_refuses_stale_writes_and_loses_nothing(
    insights, store: Store, analysis_with_two_hypotheses: str
) -> None:
    run_id = analysis_with_two_hypotheses
    ids = store.traces.trace_ids()  # type: ignore[attr-defined]
    results = start_workers(store, run_id, [("H1", ids[:10]), ("H1", ids[10:20])])
    print("stale writes refused:", [r["stale"] for r in results])
    final = insights.get_hypothesis(run_id, "H1")
    assert {e.trace_id for e in final.evidence} == set(ids[:20])
    # Every successful write is one version; refused ones left no version behind.
    assert final.version == 1 + sum(r["written"] for r in results)


def test_two_writers_of_one_version_one_wins(store: Store, insights) -> None:
    run_id = insights.create_analysis(store.experiment_id, "cas").run_id
    docs_a = RunDocuments(store.client(), run_id)
    docs_b = RunDocuments(store.client(), run_id)
    assert docs_a.write("note", "N1", {"text": "a"}, 0) == 1
    with pytest.raises(StaleWriteError, match="changed by someone else"):
        docs_b.write("note", "N1", {"text": "b"}, 0)
    assert docs_b.read("note", "N1") == {"text": "a", "version": 1}
    assert docs_b.write("note", "N1", {"text": "b"}, 1) == 2
    assert docs_a.read("note", "N1") == {"text": "b", "version": 2}


def _paused_at_hypotheses(store: Store, home: Path) -> tuple[str, str, list[str], str]:
    from analyze_experiment.agent.simulation.recordings import load_recording

    experiment_id = load_recording(store.client(), "support")
    first = json_of(
        cli_process(
            store.uri, home, "run", "--experiment-id", experiment_id, "--approve", "cli", "-o", "json", stdin="q\n"
        )
    )
    thread = first["thread_id"]
    second = json_of(
        cli_process(store.uri, home, "resume", thread, "--decision", '{"stage": "description"}', "-o", "json")
    )
    offered = [item["id"] for item in second["pending"]["items"]]
    return thread, first["run_id"], offered, experiment_id


def _decision(by: str, reject: str) -> str:
    return json.dumps({"stage": "hypotheses", "by": by, "reject": {reject: f"{by} says no"}})


@pytest.mark.slow
def test_two_people_answering_one_approval_one_decision_counts(store: Store, tmp_path: Path) -> None:
    from analyze_experiment.agent.core.insights.models import HypothesisStatus
    from analyze_experiment.agent.core.insights.service import Insights

    home = tmp_path / "home"
    thread, run_id, offered, _ = _paused_at_hypotheses(store, home)
    alice_pick, bob_pick = offered[0], offered[1]
    # Alice's process is inside the approval, holding the thread, when Bob answers the same approval.
    gate = tmp_path / "gate"
    gate.mkdir()
    alice = cli_popen(
        store.uri,
        home,
        "resume",
        thread,
        "--decision",
        _decision("alice", alice_pick),
        "-o",
        "json",
        env={
            "ANALYZE_EXPERIMENT_FAILPOINTS": "node.approve_hypotheses=pause",
            "ANALYZE_EXPERIMENT_FAILPOINT_DIR": str(gate),
        },
    )
    wait_for_file(gate / "node.approve_hypotheses.reached", alice)
    bob = cli_process(store.uri, home, "resume", thread, "--decision", _decision("bob", bob_pick))
    assert bob.returncode == 2 and "being carried on by another process" in bob.stderr, bob.stderr
    (gate / "node.approve_hypotheses.go").touch()
    out, err = alice.communicate(timeout=300)
    assert alice.returncode == 0, err
    assert json.loads(out)["pending"]["stage"] == "issues"
    # Bob tries again after Alice: his answer is to an approval that is closed.
    late = cli_process(store.uri, home, "resume", thread, "--decision", _decision("bob", bob_pick))
    assert late.returncode == 2 and "hypotheses approval was answered already" in late.stderr, late.stderr

    insights = Insights(store.client())
    analysis = insights.get_analysis(run_id)
    assert [(a.stage, a.by) for a in analysis.approvals] == [("description", "cli"), ("hypotheses", "alice")]
    assert insights.get_hypothesis(run_id, alice_pick).status is HypothesisStatus.REJECTED
    assert insights.get_hypothesis(run_id, bob_pick).status is not HypothesisStatus.REJECTED


@pytest.mark.slow
def test_two_analyses_of_one_experiment_in_two_processes(store: Store, tmp_path: Path) -> None:
    """Each keeps to its own run: same findings, its own approvals, issues and trace links."""
    from analyze_experiment.agent.core.insights.service import Insights
    from analyze_experiment.agent.core.traces.links import TraceLinks
    from analyze_experiment.agent.simulation.recordings import load_recording

    experiment_id = load_recording(store.client(), "support")
    homes = [tmp_path / "home-a", tmp_path / "home-b"]
    runs = [
        cli_popen(store.uri, home, "run", "--experiment-id", experiment_id, "--approve", "auto", "-o", "json")
        for home in homes
    ]
    outcomes = []
    for process in runs:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        outcomes.append(json.loads(out))
    insights = Insights(store.client())
    findings = []
    for outcome in outcomes:
        run_id = outcome["run_id"]
        analysis = insights.get_analysis(run_id)
        assert analysis.status.value == "COMPLETED"
        assert [a.stage for a in analysis.approvals] == ["description", "hypotheses", "issues"]
        issues = insights.list_issues(run_id)
        evidence = {e.trace_id for i in issues for e in i.evidence}
        assert evidence <= TraceLinks(store.client()).linked(experiment_id, run_id, evidence)
        findings.append(sorted((i.title, tuple(sorted(e.trace_id for e in i.evidence))) for i in issues))
    assert outcomes[0]["run_id"] != outcomes[1]["run_id"]
    assert findings[0] == findings[1] and len(findings[0]) >= 3
