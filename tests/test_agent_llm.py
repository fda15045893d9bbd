"""The LLM analyst through the real ChatOpenAI client against a local OpenAI-compatible server, and
through a scripted chat model: bad tool calls, invalid structured output, 429/500 retried."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEMPLATE_TRACES, Store
from tests.helpers import CliRunner
from tests.openai_server import openai_server

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

API_KEY = "sk-test-" + "s3cr3t" * 4


@pytest.mark.slow
def test_chat_openai_drives_the_whole_graph(
    cli: CliRunner, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyze_experiment.agent.core.insights.models import AnalysisStatus, HypothesisStatus
    from analyze_experiment.agent.core.insights.service import Insights

    with openai_server(failures=[429, 500]) as (base_url, server):
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        report = tmp_path / "report.md"
        result = cli("run", "--model", "gpt-4o-mini", "--approve", "auto", "--report", str(report), "-o", "json")
    assert result.exit_code == 0, result.stderr
    run_id = result.json()["run_id"]
    assert server.statuses[:3] == [429, 500, 200]  # both failures retried, once each

    # structured output by function calling, re-asked after an invalid answer
    answered = [r for r, status in zip(server.requests, server.statuses, strict=True) if status == 200]
    described = [r for r in answered if any(t["function"]["name"] == "Description" for t in r.get("tools", []))]
    assert len(described) == 2 and "response_format" not in described[0]
    assert "not valid" in json.dumps(described[1]["messages"])
    # bad tool calls came back to the model as readable errors
    tool_replies = [m["content"] for r in answered for m in r["messages"] if m["role"] == "tool"]
    assert any("no tool named 'run_python'" in c for c in tool_replies)
    assert any("invalid arguments for execute_sql" in c for c in tool_replies)

    insights = Insights(store.client())
    analysis = insights.get_analysis(run_id)
    assert analysis.status is AnalysisStatus.COMPLETED
    assert analysis.description.startswith("A customer support assistant")
    failed = insights.list_hypotheses(run_id)[0]
    assert failed.status is HypothesisStatus.VALIDATED
    assert any(q.result_summary and "rows" in q.result_summary for q in failed.sql_queries)
    assert insights.list_issues(run_id)

    metrics = store.client().get_run(run_id).data.metrics
    assert metrics["llm.test.input_tokens"] > 0 and metrics["llm.describe.calls"] == 2
    assert metrics["llm.test.cost_usd"] > 0

    # the analyst's own calls are traced elsewhere, never into the analysed experiment
    client = store.client()
    analyst = client.get_experiment_by_name("analyze-experiment-analyst")
    assert analyst is not None and client.search_traces(locations=[analyst.experiment_id], max_results=5)
    analysed = client.search_traces(locations=[store.experiment_id], max_results=1000)
    assert len(analysed) == TEMPLATE_TRACES

    # the key never leaves the process: not in output, report, or run artifacts
    assert all({k.lower(): v for k, v in h.items()}["authorization"] == f"Bearer {API_KEY}" for h in server.headers)
    assert API_KEY not in result.stdout + result.stderr + report.read_text()
    recorded = client.search_traces(locations=[analyst.experiment_id], max_results=500)
    assert recorded and all(API_KEY not in trace.to_json() for trace in recorded)


def test_scripted_model_recovers_from_bad_tool_calls(store: Store) -> None:
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage, BaseMessage

    from analyze_experiment.agent.core.insights.models import Census, HypothesisStatus
    from analyze_experiment.agent.core.services import Services
    from analyze_experiment.agent.core.settings import load_settings
    from analyze_experiment.graphs.analysts.llm import LlmAnalyst
    from analyze_experiment.tools.budget import Budget
    from analyze_experiment.tools.workbench import Workbench
    from tests.llm_script import respond

    class Scripted(FakeMessagesListChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
            from langchain_core.outputs import ChatGeneration, ChatResult

            wire = [
                {"role": {"human": "user", "ai": "assistant"}.get(m.type, m.type), "content": m.content}
                for m in messages
            ]
            answer = respond(wire, ["search_traces"], len(messages))
            calls = [
                {"name": c["function"]["name"], "args": json.loads(c["function"]["arguments"]), "id": c["id"]}
                for c in answer["tool_calls"]
            ]
            return ChatResult(generations=[ChatGeneration(message=AIMessage("", tool_calls=calls))])

    services = Services(
        load_settings({"MLFLOW_TRACKING_URI": store.uri, "ANALYZE_EXPERIMENT_HOME": str(store.db_path.parent)})
    )
    analysis = services.insights.create_analysis(store.experiment_id, "scripted")
    services.insights.save_census(analysis.run_id, Census(trace_count=1, ok_count=1, error_count=0, error_rate=0))
    bench = Workbench(services)
    tools = bench.tools_for(store.experiment_id, analysis.run_id)
    draft = tools.create_hypothesis(
        "failed traces exist", "census", "plan", "SELECT trace_id FROM traces WHERE state = 'ERROR'", None
    )
    budget = Budget(tool_calls=10, tokens=10_000)
    testing = bench.tools_for(store.experiment_id, analysis.run_id, budget=budget, hypothesis_id=draft.id)
    verdict = LlmAnalyst(Scripted(responses=[]), model_name="scripted").test(testing, draft)
    assert verdict.status is HypothesisStatus.VALIDATED
    assert verdict.evidence and verdict.evidence[0].supports
    assert budget.used_calls == 1  # only the valid execute_sql spent budget; bad calls never ran

    tight = Budget(tool_calls=0, tokens=10_000)
    starved = bench.tools_for(store.experiment_id, analysis.run_id, budget=tight, hypothesis_id=draft.id)
    verdict = LlmAnalyst(Scripted(responses=[]), model_name="scripted").test(starved, draft)
    assert verdict.status is None and "budget" in verdict.reason  # out of budget: no guess


def _scores(result: Any) -> dict[str, Any]:
    body = result.json()
    cases = body["cases"] if isinstance(body, dict) else body
    return {case["case"]: case for case in cases}


@pytest.mark.slow
def test_a_model_that_accepts_the_candidates_recalls_what_the_offline_analyst_does(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.accepting_script import accept

    args = [
        "evals",
        "run",
        "--scenario",
        "support",
        "--scenario",
        "travel",
        "--no-held-out",
        "--random-draws",
        "0",
        "--controls",
        "0",
        "-o",
        "json",
    ]
    offline = cli(*args)
    assert offline.exit_code == 0, offline.stderr
    with openai_server(script=accept) as (base_url, _server):
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        llm = cli(*args, "--model", "gpt-4o-mini")
    assert llm.exit_code == 0, llm.stderr
    by_offline, by_llm = _scores(offline), _scores(llm)
    for case in ("support", "travel"):
        assert by_llm[case]["llm_calls"] > 0
        assert by_llm[case]["issue_recall"] == by_offline[case]["issue_recall"] == 1.0, (case, by_llm[case]["issues"])
