"""Approving from Slack: the real slack_sdk client against a fake Slack API on 127.0.0.1, and signed
interactive payloads sent to the real Bolt app over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner
from tests.slack_fake import FakeSlack, click, fake_slack, send, submission

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

SECRET = "signing-" + "5ecret" * 4
BOT_TOKEN = "xoxb-" + "1234567890-" * 3


@dataclass
class Slack:
    fake: FakeSlack
    url: str
    hook: Any


@pytest.fixture
def slack(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Slack]:
    from analyze_experiment.agent.app.slack.hook import SlackHook
    from analyze_experiment.agent.app.slack.server import http_server
    from analyze_experiment.agent.core.services import Services
    from analyze_experiment.agent.core.settings import load_settings

    with fake_slack() as fake:
        for name, value in {
            "MLFLOW_TRACKING_URI": store.uri,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.base_url,
            "SLACK_APPROVERS": "UAPPROVER,UOTHER",
            "SLACK_CHANNEL": "C1",
            "MLFLOW_EXPERIMENT_ID": store.experiment_id,
        }.items():
            monkeypatch.setenv(name, value)
        hook = SlackHook(Services(load_settings()))
        server = http_server(hook.app(), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield Slack(fake, f"http://127.0.0.1:{server.server_port}/slack/events", hook)
        finally:
            server.shutdown()


def _start(cli: CliRunner, slack: Slack, *extra: str) -> dict[str, Any]:
    result = cli("run", "--approve", "slack", *extra, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return dict(slack.fake.next_call("chat.postMessage"), outcome=result.json())


def _next_approval(slack: Slack) -> dict[str, Any]:
    """The next approval message; progress milestones posted in between are skipped."""
    while True:
        posted = slack.fake.next_call("chat.postMessage")
        if posted["text"].startswith("Approval needed"):
            return posted


def _continue(slack: Slack, message: dict[str, Any], user: str = "UAPPROVER") -> None:
    slack.hook.finished.clear()
    assert send(slack.url, SECRET, click(slack.fake, message, "continue", user)) == 200
    assert slack.hook.finished.wait(120)


def test_a_whole_analysis_approved_through_slack(cli: CliRunner, slack: Slack) -> None:
    from analyze_experiment.agent.core.insights.models import AnalysisStatus

    first = _start(cli, slack, "--demo", "--focus", "refunds")
    assert first["outcome"]["pending"]["stage"] == "description"
    assert "focus: refunds" in str(first["blocks"])
    _continue(slack, first)
    hypotheses = _next_approval(slack)
    assert "hypotheses" in hypotheses["text"]
    _continue(slack, hypotheses)
    issues = _next_approval(slack)
    assert "issues" in issues["text"]
    _continue(slack, issues)
    summary = slack.fake.next_call("chat.postMessage")
    while summary["text"] != "Analysis complete":
        summary = slack.fake.next_call("chat.postMessage")
    run_id = first["outcome"]["run_id"]
    analysis = slack.hook.services.insights.get_analysis(run_id)
    assert analysis.status is AnalysisStatus.COMPLETED
    assert [a.by for a in analysis.approvals] == ["slack:UAPPROVER"] * 3
    tokens = [str(args) for _, args in slack.fake.log]
    assert not any(BOT_TOKEN in t or SECRET in t for t in tokens)


def test_edit_and_reject_from_slack_are_persisted(cli: CliRunner, slack: Slack) -> None:
    from analyze_experiment.agent.core.insights.models import Actor, HypothesisStatus

    first = _start(cli, slack)
    _continue(slack, first)
    message = _next_approval(slack)
    assert send(slack.url, SECRET, click(slack.fake, message, "reject_item:H1")) == 200
    modal = slack.fake.next_call("views.open")["view"]
    assert send(slack.url, SECRET, submission(modal, {"text": "not our concern"})) == 200
    slack.fake.next_call("chat.update")
    assert send(slack.url, SECRET, click(slack.fake, message, "edit_item:H2")) == 200
    modal = slack.fake.next_call("views.open")["view"]
    assert (
        send(
            slack.url,
            SECRET,
            submission(
                modal,
                {
                    "statement": "order lookups time out",
                    "testing_plan": "",
                    "sql": "SELECT trace_id FROM traces WHERE state = 'ERROR'",
                },
            ),
        )
        == 200
    )
    slack.fake.next_call("chat.update")
    assert send(slack.url, SECRET, click(slack.fake, message, "add_hypothesis")) == 200
    modal = slack.fake.next_call("views.open")["view"]
    added = {"statement": "failed traces are order lookups", "sql": "SELECT trace_id FROM traces WHERE state = 'ERROR'"}
    assert send(slack.url, SECRET, submission(modal, added)) == 200
    slack.fake.next_call("chat.update")
    _continue(slack, message)
    run_id = first["outcome"]["run_id"]
    (person,) = [h for h in slack.hook.services.insights.list_hypotheses(run_id) if h.author is Actor.PERSON]
    assert person.statement == added["statement"] and person.status is HypothesisStatus.VALIDATED
    rejected = slack.hook.services.insights.get_hypothesis(run_id, "H1")
    assert rejected.status is HypothesisStatus.REJECTED and rejected.history[-1].actor is Actor.PERSON
    assert "not our concern" in rejected.history[-1].reason and not rejected.evidence
    assert slack.hook.services.insights.get_hypothesis(run_id, "H2").statement == "order lookups time out"


def test_a_refused_decision_can_still_be_changed_in_slack(cli: CliRunner, slack: Slack) -> None:
    from analyze_experiment.agent.core.insights.models import Actor

    first = _start(cli, slack)
    _continue(slack, first)
    message = _next_approval(slack)
    assert send(slack.url, SECRET, click(slack.fake, message, "add_hypothesis")) == 200
    modal = slack.fake.next_call("views.open")["view"]
    no_ids = {"statement": "failed traces are order lookups", "sql": "SELECT request FROM traces WHERE state = 'ERROR'"}
    assert send(slack.url, SECRET, submission(modal, no_ids)) == 200
    slack.fake.next_call("chat.update")
    assert send(slack.url, SECRET, click(slack.fake, message, "continue")) == 200
    assert "Not applied" in slack.fake.next_call("respond")["text"]
    # the draft stays open: the person can still change it
    assert send(slack.url, SECRET, click(slack.fake, message, "add_hypothesis")) == 200
    assert slack.fake.next_call("views.open")["view"]["callback_id"] == "approval_edit"
    run_id = first["outcome"]["run_id"]
    assert not [h for h in slack.hook.services.insights.list_hypotheses(run_id) if h.author is Actor.PERSON]


@pytest.mark.parametrize("forgery", ["unsigned", "bad signature", "wrong secret", "stale"])
def test_forged_requests_are_refused_and_change_nothing(cli: CliRunner, slack: Slack, forgery: str) -> None:
    first = _start(cli, slack)
    payload = click(slack.fake, first, "continue")
    status = {
        "unsigned": lambda: send(slack.url, SECRET, payload, signature="none"),
        "bad signature": lambda: send(slack.url, SECRET, payload, signature="v0=" + "0" * 64),
        "wrong secret": lambda: send(slack.url, "not-the-secret", payload),
        "stale": lambda: send(slack.url, SECRET, payload, timestamp=int(time.time()) - 600),
    }[forgery]()
    assert status == 401
    assert slack.hook.services.insights.get_analysis(first["outcome"]["run_id"]).approvals == []
    assert slack.hook.drafts.get(first["outcome"]["thread_id"], "description").submitted is False


def test_an_approver_outside_the_allow_list_is_refused_politely(cli: CliRunner, slack: Slack) -> None:
    first = _start(cli, slack)
    assert send(slack.url, SECRET, click(slack.fake, first, "continue", user="USTRANGER")) == 200
    refusal = slack.fake.next_call("respond")
    assert "not on the list" in refusal["text"]
    assert slack.hook.services.insights.get_analysis(first["outcome"]["run_id"]).approvals == []


def test_a_double_click_is_harmless(cli: CliRunner, slack: Slack) -> None:
    first = _start(cli, slack)
    _continue(slack, first)
    assert send(slack.url, SECRET, click(slack.fake, first, "continue", user="UOTHER")) == 200
    assert "already decided" in slack.fake.next_call("respond")["text"]
    approvals = slack.hook.services.insights.get_analysis(first["outcome"]["run_id"]).approvals
    assert [a.stage for a in approvals] == ["description"]
