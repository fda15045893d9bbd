"""Two processes writing to one analysis: nobody's write is lost, a stale write is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import StaleWriteError
from agent.insights.documents import RunDocuments
from tests.conftest import Store

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
    from agent.insights.models import Census

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
