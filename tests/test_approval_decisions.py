"""What a person decides at the hypotheses approval is checked before anything is applied, and a bad
query in one hypothesis stops only that hypothesis's test."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

ERRORS_SQL = "SELECT trace_id FROM traces WHERE state = 'ERROR'"
SUCCESS_SQL = "SELECT trace_id FROM traces WHERE state = 'OK'"


def paused_at_hypotheses(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("q\n"))
    first = cli("run", "--approve", "cli", "-o", "json")
    assert first.exit_code == 0, first.stderr
    thread, run_id = first.json()["thread_id"], first.json()["run_id"]
    second = cli.ok("resume", thread, "--decision", json.dumps({"stage": "description"}), "-o", "json")
    assert second.json()["pending"]["stage"] == "hypotheses"
    return thread, run_id


def test_decisions_are_checked_and_one_bad_query_stops_only_its_own_test(
    cli: CliRunner, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyze_experiment.agent.core.insights.models import HypothesisStatus
    from analyze_experiment.agent.core.insights.service import Insights

    thread, run_id = paused_at_hypotheses(cli, monkeypatch)
    insights = Insights(store.client())
    before = insights.list_hypotheses(run_id)

    # refused before anything is applied: a query without trace_id, a new statement without its own query
    no_ids = {
        "add_hypotheses": [{"statement": "refunds fail", "sql": "SELECT request FROM traces WHERE state = 'ERROR'"}]
    }
    assert "no trace_id" in cli.refused("resume", thread, "--decision", json.dumps(no_ids))
    old_sql = {"hypothesis_edits": [{"id": "H1", "statement": "every failed request is slow"}]}
    assert "needs its own SQL" in cli.refused("resume", thread, "--decision", json.dumps(old_sql))
    assert insights.list_hypotheses(run_id) == before
    assert cli.ok("list", "-o", "json").json()[0]["waiting_for"] == "hypotheses"

    # a query that cannot be tested (written outside the approval, as a model might): it stops its own test only
    cli.ok(
        "insights",
        "create-hypothesis",
        "--run-id",
        run_id,
        "--statement",
        "long requests fail",
        "--rationale",
        "census",
        "--testing-plan",
        "Q1",
        "--sql-query",
        json.dumps({"id": "Q1", "query": "SELECT request FROM traces"}),
    )
    broken = insights.list_hypotheses(run_id)[-1].id
    edit = {"hypothesis_edits": [{"id": "H1", "statement": "requests that succeed", "sql": SUCCESS_SQL}]}
    after = cli.ok("resume", thread, "--decision", json.dumps(edit), "-o", "json").json()
    assert after["pending"]["stage"] == "issues"

    stuck = insights.get_hypothesis(run_id, broken)
    assert stuck.status is HypothesisStatus.TESTING and stuck.notes[-1].startswith("test stopped: ")
    edited = insights.get_hypothesis(run_id, "H1")
    assert edited.statement == "requests that succeed" and edited.selection is not None
    assert edited.selection.query == SUCCESS_SQL and edited.statistics is None
    succeeded = set(store.traces.ok_ids())  # type: ignore[attr-defined]
    read = {e.trace_id for e in edited.evidence}
    assert read and read <= succeeded  # tested by the new query; the engine's H1 was about failed traces
    others = [h for h in insights.list_hypotheses(run_id) if h.id not in {broken, "H1"}]
    assert others and all(h.status is not HypothesisStatus.TESTING or h.notes for h in others)

    done = cli.ok("resume", thread, "--approve", "auto", "-o", "json").json()
    report = Path(done["report"]).read_text(encoding="utf-8")
    assert f"- {broken}, added by person: long requests fail. Outcome: not concluded" in report


def test_a_decision_is_checked_whole_before_any_of_it_applies() -> None:
    from analyze_experiment.agent.app.session import check_decision
    from analyze_experiment.agent.core.approvals import ApprovalDecision, ApprovalItem, ApprovalRequest, IssueEdit
    from analyze_experiment.agent.core.errors import DecisionRefused

    request = ApprovalRequest(
        thread_id="ax-1",
        run_id="r",
        experiment_id="1",
        stage="issues",
        question="?",
        items=[ApprovalItem(id="I1", title="a"), ApprovalItem(id="I2", title="b")],
    )
    # the rejection would be applied before the edit; the short title must stop both
    decision = ApprovalDecision(reject={"I1": "dup"}, issue_edits=[IssueEdit(id="I2", title="Too short")])
    with pytest.raises(DecisionRefused, match="I2: issue titles must be"):
        check_decision(request, decision)
