"""kill -9 inside every phase, mid-write included, then resume in a new process: the analysis ends
exactly as one that never crashed, with nothing duplicated and nothing lost.

Failpoints (`agent/core/failpoints.py`) put the SIGKILL at an exact step, so each crash lands where it is
meant to; the process dies the way it would from an outside `kill -9`.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from analyze_experiment.agent.core.insights.models import Analysis, Hypothesis, Issue
from analyze_experiment.agent.simulation.recordings import load_recording
from tests.conftest import Store
from tests.helpers import CliRunner, cli_process, json_of

# (phase, failpoint): every phase, and in most of them between an artifact's upload and its claim
# ("documents.claim") or just after a claim, before the graph could checkpoint ("documents.claimed").
CRASHES = [
    ("setup", "analysis.run_created"),  # the run exists, its analysis document does not
    ("describe", "documents.claim@describe"),
    ("approve description", "documents.claimed@approve_description"),
    ("census", "documents.claim@census"),
    ("hypothesize", "documents.claimed@record_hypotheses#3"),  # three of the drafted hypotheses written
    ("approve hypotheses", "documents.claimed@approve_hypotheses"),
    ("test", "documents.claimed@test_hypothesis#7"),
    ("issue", "issue.native_created"),  # MLflow's issue made, its id not yet noted
    ("approve issues", "documents.claimed@approve_issues"),
    ("report", "documents.claim@report"),
]


def _state(store: Store, run_id: str) -> tuple[Analysis, list[Hypothesis], list[Issue]]:
    from analyze_experiment.agent.core.insights.service import Insights

    insights = Insights(store.client())
    return insights.get_analysis(run_id), insights.list_hypotheses(run_id), insights.list_issues(run_id)


def _outline(hypotheses: list[Hypothesis], issues: list[Issue]) -> dict[str, Any]:
    """What a crash must not change: every hypothesis, its verdict, evidence and queries; every issue."""
    return {
        "hypotheses": sorted(
            (
                h.statement,
                h.status.value,
                tuple(sorted((e.trace_id, e.supports) for e in h.evidence)),
                tuple(sorted(q.query for q in h.sql_queries)),
            )
            for h in hypotheses
        ),
        "issues": sorted(
            (i.title, i.severity.value, i.status.value, tuple(sorted(e.trace_id for e in i.evidence))) for i in issues
        ),
    }


@pytest.mark.slow
def test_kill_9_in_every_phase_then_resume_matches_a_run_that_never_crashed(
    store: Store, cli: CliRunner, tmp_path: Path
) -> None:
    from mlflow.tracing.client import TracingClient

    experiment_id = load_recording(store.client(), "support")
    home = tmp_path / "crash-home"
    thread = None
    for phase, point in CRASHES:
        env = {"ANALYZE_EXPERIMENT_FAILPOINTS": f"{point}=kill"}
        args = ("resume", thread) if thread else ("run", "--experiment-id", experiment_id)
        done = cli_process(store.uri, home, *args, "--approve", "auto", "-o", "json", env=env)
        assert done.returncode == -signal.SIGKILL, f"{phase} ({point}) was not reached: {done.stderr[-2000:]}"
        if thread is None:
            (listed,) = json_of(cli_process(store.uri, home, "list", "-o", "json"))
            thread = listed["thread_id"]
    assert thread is not None
    finished = json_of(cli_process(store.uri, home, "resume", thread, "--approve", "auto", "-o", "json"))
    assert finished["report"] and Path(finished["report"]).exists()

    clean = cli.ok("run", "--experiment-id", experiment_id, "--approve", "auto", "-o", "json").json()
    analysis, hypotheses, issues = _state(store, finished["run_id"])
    _, clean_hypotheses, clean_issues = _state(store, clean["run_id"])
    assert _outline(hypotheses, issues) == _outline(clean_hypotheses, clean_issues)
    assert len(issues) >= 3 and any(h.status.value == "REJECTED" for h in hypotheses)

    # nothing twice: one analysis run, one approval per stage, one issue per hypothesis, one query per text
    runs = store.client().search_runs([experiment_id], filter_string=f"tags.`insights.thread_id` = '{thread}'")
    assert [r.info.run_id for r in runs] == [finished["run_id"]]
    assert [a.stage for a in analysis.approvals] == ["description", "hypotheses", "issues"]
    assert analysis.status.value == "COMPLETED"
    assert len({i.hypothesis_id for i in issues}) == len(issues)
    for hypothesis in hypotheses:
        texts = [q.query.strip() for q in hypothesis.sql_queries]
        assert len(texts) == len(set(texts)), f"{hypothesis.id} lineage repeats a query"

    # MLflow's own issues: one per issue, each evidence trace referenced exactly once
    tracing = TracingClient(store.uri)
    native = tracing.store.search_issues(experiment_id, filter_string=f"source_run_id = '{finished['run_id']}'")
    assert sorted(n.issue_id for n in native) == sorted(i.native_issue_id for i in issues)
    for issue in issues:
        for entry in issue.evidence:
            refs = Counter(a.name for a in tracing.get_trace_info(entry.trace_id).assessments or [])
            assert refs[issue.native_issue_id] == 1, f"{entry.trace_id} references {issue.id} {refs}"
