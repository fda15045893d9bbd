"""Traces written by someone hostile (tests/hostile_traces.py): the analysis finishes, the rules hold
whatever the traces say, the report quotes without obeying, and big content is cut with a note."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Store
from tests.gullible_script import obey
from tests.helpers import CliRunner
from tests.hostile_traces import BIG_CHARS, FAKE_ID, MANY_SPANS, make_hostile
from tests.openai_server import openai_server

KEY = "sk-hostile-" + "q" * 20


@pytest.fixture
def hostile(store: Store) -> tuple[str, dict[str, list[str]]]:
    from analyze_experiment.agent.simulation.scenarios import generate
    from analyze_experiment.agent.simulation.writer import write_traces

    client = store.client()
    experiment_id = client.create_experiment("hostile")
    run = generate("support", experiment_id, 120, seed=21)
    kinds = make_hostile(run.traces)
    write_traces(client, experiment_id, run.traces)
    return experiment_id, kinds


def _rules_held(store: Store, experiment_id: str, run_id: str) -> Any:
    """No fake trace anywhere, every evidence trace real and linked, statuses changed with evidence."""
    from analyze_experiment.agent.core.insights.models import Actor, HypothesisStatus
    from analyze_experiment.agent.core.insights.service import Insights
    from analyze_experiment.agent.core.traces.links import TraceLinks

    insights = Insights(store.client())
    hypotheses, issues = insights.list_hypotheses(run_id), insights.list_issues(run_id)
    cited = {e.trace_id for h in hypotheses for e in h.evidence} | {e.trace_id for i in issues for e in i.evidence}
    assert FAKE_ID not in cited
    assert cited <= TraceLinks(store.client()).linked(experiment_id, run_id, cited)
    for h in hypotheses:
        assert all(change.actor is Actor.AGENT for change in h.history)  # nobody became a person
        if h.status is HypothesisStatus.VALIDATED:
            assert any(e.supports for e in h.evidence)
    assert all(insights.get_hypothesis(run_id, i.hypothesis_id).status is HypothesisStatus.VALIDATED for i in issues)
    assert {a.by for a in insights.get_analysis(run_id).approvals} == {"auto"}
    return insights


@pytest.mark.slow
def test_offline_analysis_of_hostile_traces(
    cli: CliRunner, store: Store, tmp_path: Path, hostile: tuple[str, dict[str, list[str]]]
) -> None:
    experiment_id, kinds = hostile
    report = tmp_path / "report.md"
    done = cli.ok("run", "--experiment-id", experiment_id, "--approve", "auto", "--report", str(report), "-o", "json")
    _rules_held(store, experiment_id, done.json()["run_id"])

    text = report.read_bytes().decode("utf-8")  # valid UTF-8, whatever the traces held
    assert "<script>" not in text and text.count("</details>") == text.count("<details>")  # the report's own
    assert not re.search(r"(?<!\\)\]\(javascript:", text)  # a link only when its bracket is not escaped
    assert not any(line.startswith(("# Issue I9", "| x |")) for line in text.splitlines())
    assert "\\<script\\>" in text  # quoted, escaped, not dropped
    assert len(text) < 200_000

    big = cli.ok("traces", "get", "-t", kinds["big"][0], "-o", "json")
    cut = [int(n.replace(",", "")) for n in re.findall(r"truncated: ([\d,]+) more characters", big.stdout)]
    assert len(big.stdout) < 50_000 and max(cut) > BIG_CHARS - 10_000
    many = cli.ok("traces", "get", "-t", kinds["many_spans"][0], "-o", "json").json()
    assert len(many["spans"]) + many["spans_cut"] == MANY_SPANS and many["spans_cut"] > 0
    assert "more spans not shown" in cli.ok("traces", "get", "-t", kinds["many_spans"][0]).stdout
    broken = cli.ok("traces", "get", "-t", kinds["broken_text"][0], "-o", "json").stdout
    broken.encode("utf-8")  # printable: the lone surrogates did not reach the output


@pytest.mark.slow
def test_a_model_that_obeys_the_traces_gets_nowhere(
    cli: CliRunner, store: Store, monkeypatch: pytest.MonkeyPatch, hostile: tuple[str, dict[str, list[str]]]
) -> None:
    from analyze_experiment.agent.core.insights.models import HypothesisStatus

    experiment_id, _ = hostile
    with openai_server(script=obey) as (base_url, server):
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        done = cli.ok(
            "run", "--experiment-id", experiment_id, "--model", "gpt-4o-mini", "--approve", "auto", "-o", "json"
        )
    run_id = done.json()["run_id"]
    insights = _rules_held(store, experiment_id, run_id)
    (hypothesis,) = insights.list_hypotheses(run_id)
    assert hypothesis.status is HypothesisStatus.TESTING  # the verdict had nothing behind it: refused
    assert not insights.list_issues(run_id)

    replies = [m["content"] for r in server.requests for m in r["messages"] if m["role"] == "tool"]
    assert any("ignore previous instructions" in r for r in replies)  # the model did see the injection
    refused = [r for r in replies if r.startswith("error")]
    for move in (
        "has not come up",
        "no tool named 'reject_hypothesis'",
        "no tool named 'approve_issue'",
        "DROP statements are not allowed",
        "found 2 statements",
    ):
        assert any(move in r for r in refused), move
    count = cli.ok("traces", "execute-sql", "-x", experiment_id, "-s", "SELECT count(*) AS n FROM traces", "-o", "json")
    assert count.json()["result"]["rows"] == [[120]]
    assert len(store.client().search_traces(locations=[experiment_id], max_results=500)) == 120
