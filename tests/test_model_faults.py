"""Model endpoint faults through the real ChatOpenAI client and a local OpenAI-compatible server:
what a retry can fix is retried; the rest ends in a plain message and a resumable pause."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner
from tests.openai_server import Fault, openai_server

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

KEY = "sk-fault-" + "k3y" * 6


def _model(base_url: str, timeout: str = "1") -> Any:
    from analyze_experiment.agent.core.settings import load_settings
    from analyze_experiment.graphs.analysts.llm import chat_model

    settings = load_settings(
        {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": KEY, "ANALYZE_EXPERIMENT_LLM_TIMEOUT": timeout}
    )
    return chat_model("gpt-4o-mini", settings)


@pytest.mark.parametrize(
    ("faults", "calls"),
    [
        ([429, 429, 429], 4),  # a burst of rate limits, inside the retries
        ([500, 502, 503], 4),
        (["timeout", "timeout"], 3),
        (["drop", "drop", "drop"], 4),
        ([429, "timeout", "drop"], 4),
    ],
)
def test_transient_faults_are_retried(faults: list[Fault], calls: int) -> None:
    from langchain_core.messages import HumanMessage

    from analyze_experiment.graphs.analysts.llm import with_retries

    with openai_server(faults) as (base_url, server):
        reply = with_retries(partial(_model(base_url).invoke, [HumanMessage("hello")]))
    assert reply.tool_calls
    assert len(server.requests) == calls and server.statuses[-1] == 200


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ([429] * 4, "kept answering 429 (rate limited) for 4 attempts"),
        ([500] * 4, "kept failing with HTTP 500 for 4 attempts"),
        (["timeout"] * 4, "did not answer in time for 4 attempts"),
        (["drop"] * 4, "the connection to the model endpoint failed 4 times"),
        ([400], "longer than the model's context window"),
    ],
)
def test_lasting_faults_end_in_a_plain_message(faults: list[Fault], message: str) -> None:
    from langchain_core.messages import HumanMessage

    from analyze_experiment.agent.core.errors import AnalystError
    from analyze_experiment.graphs.analysts.llm import with_retries

    with openai_server(faults) as (base_url, server), pytest.raises(AnalystError) as failed:
        with_retries(partial(_model(base_url).invoke, [HumanMessage("hello")]))
    assert message in str(failed.value) and KEY not in str(failed.value)
    assert len(server.requests) == len(faults)  # a context overflow is not retried: it would fail the same way


def _testing(store: Store, sql: str | None) -> tuple[Any, Any]:
    """A hypothesis ready to test (analysis, census, the hypothesis) and a budgeted toolbox for it."""
    from analyze_experiment.agent.core.insights.models import Census
    from analyze_experiment.agent.core.services import Services
    from analyze_experiment.agent.core.settings import load_settings
    from analyze_experiment.tools.budget import Budget
    from analyze_experiment.tools.workbench import Workbench

    services = Services(
        load_settings({"MLFLOW_TRACKING_URI": store.uri, "ANALYZE_EXPERIMENT_HOME": str(store.db_path.parent)})
    )
    bench = Workbench(services)
    analysis = services.insights.create_analysis(store.experiment_id, "faults")
    services.insights.save_census(analysis.run_id, Census(trace_count=1, ok_count=1, error_count=0, error_rate=0))
    draft = bench.tools_for(store.experiment_id, analysis.run_id).create_hypothesis(
        "failed traces exist", "census", "plan", sql, None
    )
    testing = bench.tools_for(
        store.experiment_id, analysis.run_id, budget=Budget(tool_calls=10, tokens=50_000), hypothesis_id=draft.id
    )
    return draft, testing


def test_broken_and_cut_off_tool_calls_are_answered_and_the_test_goes_on(store: Store) -> None:
    from analyze_experiment.agent.core.insights.models import HypothesisStatus
    from analyze_experiment.graphs.analysts.llm import LlmAnalyst

    draft, testing = _testing(store, "SELECT trace_id FROM traces WHERE state = 'ERROR'")
    with openai_server(["bad_json", "truncated"]) as (base_url, server):
        verdict = LlmAnalyst(_model(base_url, "10"), model_name="gpt-4o-mini").test(testing, draft)
    assert verdict.status is HypothesisStatus.VALIDATED
    replies = server.requests[2]["messages"]
    assert any(m["role"] == "tool" and "not valid JSON" in str(m["content"]) for m in replies)
    assert any(m["role"] == "user" and "cut off at the output limit" in str(m["content"]) for m in replies)


def test_a_broken_structured_answer_is_asked_again(store: Store) -> None:
    from analyze_experiment.graphs.analysts.llm import LlmAnalyst

    _, tools = _testing(store, None)
    with openai_server(["bad_json", "truncated"]) as (base_url, server):
        description = LlmAnalyst(_model(base_url, "10"), model_name="gpt-4o-mini").describe(tools, [])
    assert description.startswith("A customer support assistant")
    assert len(server.requests) == 3 and "not valid" in str(server.requests[2]["messages"])


def test_a_context_overflow_while_testing_leaves_the_hypothesis_open(store: Store) -> None:
    from analyze_experiment.graphs.analysts.llm import LlmAnalyst

    draft, testing = _testing(store, None)
    with openai_server([200, 200, 400]) as (base_url, _server):
        verdict = LlmAnalyst(_model(base_url, "10"), model_name="gpt-4o-mini").test(testing, draft)
    assert verdict.status is None and "context window" in verdict.reason


@pytest.mark.slow
def test_an_endpoint_that_goes_down_mid_analysis_pauses_it_and_resume_finishes(
    cli: CliRunner, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyze_experiment.agent.core.insights.models import AnalysisStatus, HypothesisStatus
    from analyze_experiment.agent.core.insights.service import Insights

    with openai_server([200] * 8) as (base_url, server):  # describe and hypothesize, then testing begins
        server.every = 500
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        paused = cli("run", "--model", "gpt-4o-mini", "--approve", "auto")
        assert paused.exit_code == 75, paused.stderr
        (line,) = [line for line in paused.stderr.splitlines() if line.startswith("error:")]
        assert "kept failing with HTTP 500 for 4 attempts" in line and "analyze-experiment resume ax-" in line
        thread = line.rsplit("resume ", 1)[1].strip("`")
        (listed,) = cli.ok("list", "-o", "json").json()
        assert listed["thread_id"] == thread and listed["phase"] != "complete"

        server.every = None  # the endpoint is back
        done = cli("resume", thread, "--approve", "auto", "-o", "json")
    assert done.exit_code == 0, done.stderr
    insights = Insights(store.client())
    run_id = done.json()["run_id"]
    analysis = insights.get_analysis(run_id)
    assert analysis.status is AnalysisStatus.COMPLETED
    assert [a.stage for a in analysis.approvals] == ["description", "hypotheses", "issues"]
    hypotheses = insights.list_hypotheses(run_id)
    assert len(hypotheses) == 2 and not [h for h in hypotheses if h.status is HypothesisStatus.TESTING]
    assert KEY not in paused.stderr + paused.stdout + done.stdout + done.stderr
