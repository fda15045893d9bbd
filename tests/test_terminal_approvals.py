"""The approvals at the terminal, answered through stdin: every change confirmed, ids in any case,
cancelling, refusing empty reasons, asking before dropping changes, Ctrl-D like Ctrl-C."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI


def answering(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(a + "\n" for a in answers)))


def test_a_person_decides_at_the_terminal(cli: CliRunner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from analyze_experiment.agent.core.insights.models import Actor, HypothesisStatus
    from analyze_experiment.agent.core.insights.service import Insights

    answering(
        monkeypatch,
        "a",  # the description as it is
        "r",
        "",  # reject... cancelled
        "r",
        "h2",
        "",
        "not ours",  # lower-case id; an empty reason is asked again
        "q",
        "n",  # pause? not with a change made: keep deciding
        "a",
        "e",
        "i1",
        "",
        "high",  # an issue: same title, severity HIGH
        "a",
    )
    result = cli("run", "--approve", "cli", "-o", "json")
    assert result.exit_code == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "H2 will be rejected: not ours" in said and "an answer is needed" in said
    assert "pause and drop the changes made here" in said and "I1 edited" in said
    assert re.search(r"  H2  \S", result.stderr)  # titles listed next to ids when choosing
    assert re.search(r"now (LOW|MEDIUM|CRITICAL)", said)  # the current severity, before the change
    run_id = result.json()["run_id"]
    insights = Insights(store.client())
    rejected = insights.get_hypothesis(run_id, "H2")
    assert rejected.status is HypothesisStatus.REJECTED and rejected.history[-1].actor is Actor.PERSON
    assert insights.get_issue(run_id, "I1").severity.value == "HIGH"


def test_ctrl_d_at_a_prompt_stops_like_ctrl_c(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    answering(monkeypatch)  # nothing to read: the prompt meets end of input
    result = cli("run", "--approve", "cli")
    assert result.exit_code == 130
    (thread,) = [t["thread_id"] for t in cli.ok("list", "-o", "json").json()]
    assert f"analyze-experiment resume {thread}" in result.stderr


def test_a_focus_area_is_examined_first(cli: CliRunner, store: Store) -> None:
    focus = "reranking latency"  # named in no statement as such: 'rerank' is its stem
    from analyze_experiment.agent.core.insights.service import Insights

    plain_run = cli.ok("run", "--approve", "auto", "-o", "json").json()["run_id"]
    focused_run = cli.ok("run", "--approve", "auto", "--focus", focus, "-o", "json").json()["run_id"]
    insights = Insights(store.client())
    before = [h.statement for h in insights.list_hypotheses(plain_run)]
    after = [h.statement for h in insights.list_hypotheses(focused_run)]
    stem = "rerank"
    assert stem in after[0].lower() and stem not in before[0].lower()


def test_resume_writes_the_report_where_it_is_told(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    answering(monkeypatch, "q")
    thread = cli.ok("run", "--approve", "cli", "-o", "json").json()["thread_id"]
    assert "cannot write the report" in cli.refused("resume", thread, "--report", "/proc/nope/report.md")
    wanted = tmp_path / "reports" / "week-48.md"
    paused = cli.ok("resume", thread, "--decision", '{"stage": "description"}', "--report", str(wanted), "-o", "json")
    assert paused.json()["pending"]["stage"] == "hypotheses"
    done = cli.ok("resume", thread, "--approve", "auto", "-o", "json").json()  # a later resume keeps the path
    assert done["report"] == str(wanted) and wanted.read_text(encoding="utf-8").startswith("# Analysis report")
    assert "is complete" in cli.refused("resume", thread, "--report", str(tmp_path / "other.md"))
