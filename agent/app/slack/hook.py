"""The Slack hook: posts approvals, receives clicks (Bolt), resumes analyses in the background.

Bolt verifies every request's signature (5-minute replay window) and answers 401 otherwise. Handlers
acknowledge at once and do the work on a worker thread, so Slack's 3-second limit always holds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from analyze_experiment.agent.app.slack.blocks import approval_blocks, decided_blocks, edit_modal, summary_blocks
from analyze_experiment.agent.app.slack.drafts import Draft, Drafts
from analyze_experiment.agent.core.approvals import (
    ApprovalDecision,
    ApprovalRequest,
    HypothesisEdit,
    IssueEdit,
    NewHypothesis,
)
from analyze_experiment.agent.core.errors import AnalysisPaused, ConfigurationError, UserError
from analyze_experiment.agent.core.insights.models import Severity
from analyze_experiment.agent.core.services import Services

MILESTONES = ("census:", "hypothesize:", "report written")
log = logging.getLogger(__name__)


def web_client(services: Services) -> WebClient:
    s = services.settings
    if not s.slack_bot_token:
        raise ConfigurationError(
            "Slack needs SLACK_BOT_TOKEN (a bot token with chat:write); set it in the environment or --env-file"
        )
    base = s.slack_api_url or "https://slack.com/api/"
    return WebClient(token=s.slack_bot_token.get_secret_value(), base_url=base.rstrip("/") + "/")


class SlackHook:
    def __init__(self, services: Services, client: WebClient | None = None) -> None:
        self.services = services
        self.client = client or web_client(services)
        self.drafts = Drafts(services.settings.home / "slack" / "drafts")
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="slack-resume")
        self.finished = threading.Event()  # set whenever a background resume ends (tests wait on it)

    # -- posting ------------------------------------------------------------------------------------

    def post_approval(self, request: ApprovalRequest, channel: str | None = None) -> Draft:
        root = self.drafts.root(request.thread_id)
        target = channel or (root[0] if root else None) or self.services.settings.slack_channel
        if not target:
            raise ConfigurationError("no Slack channel; pass --slack-channel or set SLACK_CHANNEL")
        decision = ApprovalDecision(by="slack", stage=request.stage)
        posted = self.client.chat_postMessage(
            channel=target,
            text=f"Approval needed: {request.stage}",
            blocks=approval_blocks(request, decision),
            thread_ts=root[1] if root else None,
        )
        draft = Draft(
            request=request,
            decision=decision,
            channel=str(posted["channel"]),
            ts=str(posted["ts"]),
            root_ts=root[1] if root else str(posted["ts"]),
        )
        self.drafts.save(draft)
        return draft

    def post_summary(self, thread: str, run_id: str, report: str) -> None:
        root = self.drafts.root(thread)
        if root is None:
            return
        issues = self.services.insights.list_issues(run_id)
        lines = [f"{i.id} ({i.severity.value}): {i.title}" for i in issues if i.status.value != "REJECTED"]
        lines = lines or ["No issues reported."]
        lines.append(f"Report: {report}")
        link = self.services.run_link(run_id)
        self.client.chat_postMessage(
            channel=root[0],
            thread_ts=root[1],
            text="Analysis complete",
            blocks=summary_blocks("Analysis complete", lines, link),
        )

    def _milestone(self, thread: str) -> Callable[[dict[str, Any]], None]:
        def post(event: dict[str, Any]) -> None:
            text = str(event.get("text", ""))
            root = self.drafts.root(thread)
            if event.get("kind") == "phase" and text.startswith(MILESTONES) and root:
                self.client.chat_postMessage(channel=root[0], thread_ts=root[1], text=self.services.redact(text[:500]))

        return post

    # -- receiving ----------------------------------------------------------------------------------

    def app(self) -> App:
        s = self.services.settings
        if not s.slack_signing_secret:
            raise ConfigurationError("slack serve needs SLACK_SIGNING_SECRET (Basic Information page of the Slack app)")
        app = App(
            signing_secret=s.slack_signing_secret.get_secret_value(), client=self.client, process_before_response=False
        )
        app.action(re.compile(r"^approve_item:"))(self._on_approve_item)
        app.action(re.compile(r"^(reject_item|edit_item):|^(edit_description|add_focus|add_hypothesis)$"))(
            self._on_open_modal
        )
        app.action("continue")(self._on_continue)
        app.view("approval_edit")(self._on_modal_saved)
        return app

    def _on_approve_item(self, ack: Callable[..., Any], body: dict[str, Any], respond: Callable[..., Any]) -> None:
        ack()
        ref = self._allowed_ref(body, respond)
        if ref is None:
            return

        def approve(draft: Draft) -> bool:
            draft.decision.reject.pop(ref["item"], None)
            return not draft.submitted

        self._refresh(self.drafts.change(ref["thread"], ref["stage"], approve), respond)

    def _on_open_modal(self, ack: Callable[..., Any], body: dict[str, Any], respond: Callable[..., Any]) -> None:
        ack()
        ref = self._allowed_ref(body, respond)
        if ref is None:
            return
        draft = self.drafts.get(ref["thread"], ref["stage"])
        if draft is None or draft.submitted:
            _already_decided(respond)
            return
        action = body["actions"][0]["action_id"].split(":")[0]
        kind = {
            "reject_item": "reject",
            "edit_description": "description",
            "add_focus": "focus",
            "add_hypothesis": "add_hypothesis",
        }.get(action) or ("hypothesis" if ref["stage"] == "hypotheses" else "issue")
        self.client.views_open(trigger_id=body["trigger_id"], view=edit_modal(draft.request, ref["item"], kind))

    def _on_modal_saved(self, ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view["private_metadata"])
        values = {
            block: next(iter(actions.values())).get("value") for block, actions in view["state"]["values"].items()
        }
        user = body["user"]["id"]
        if not self._is_approver(user):
            ack(
                response_action="errors",
                errors={next(iter(values), "text"): "You are not allowed to approve analyses."},
            )
            return
        try:
            change = _edit_from(meta, values, user)
        except UserError as refused:
            ack(response_action="errors", errors={next(iter(values), "text"): refused.message[:150]})
            return
        ack()

        def edit(draft: Draft) -> bool:
            if draft.submitted:
                return False
            change(draft.decision)
            return True

        self._refresh(self.drafts.change(meta["thread"], meta["stage"], edit), None)

    def _on_continue(self, ack: Callable[..., Any], body: dict[str, Any], respond: Callable[..., Any]) -> None:
        ack()
        ref = self._allowed_ref(body, respond)
        if ref is None:
            return
        user = body["user"]["id"]
        from analyze_experiment.agent.app.session import AnalysisSession

        session = AnalysisSession(self.services)
        pending = session.pending(ref["thread"])
        draft = self.drafts.get(ref["thread"], ref["stage"])
        if pending is None or pending.stage != ref["stage"] or draft is None:
            _already_decided(respond)
            return
        checked = draft.decision.model_copy(deep=True)
        try:  # checked before the draft is closed, so a refused answer can still be changed
            session.check(pending, checked)
        except UserError as refused:
            _not_applied(respond, self.services.redact(refused.message))
            return
        except Exception as failed:  # the store or the table failing: say so, the draft stays open
            log.exception("checking the decision for %s failed", ref["thread"])
            _not_applied(respond, self.services.redact(f"it could not be checked ({failed})"))
            return

        def submit(draft: Draft) -> bool:
            # an edit saved while the check ran was not checked: the person presses Continue again
            if draft.submitted or draft.decision != checked:
                return False
            draft.submitted = True
            draft.decision.by = f"slack:{user}"
            return True

        submitted = self.drafts.change(ref["thread"], ref["stage"], submit)
        if submitted is None:
            current = self.drafts.get(ref["thread"], ref["stage"])
            if current is not None and not current.submitted:
                _not_applied(respond, "it changed while it was being checked")
            else:
                _already_decided(respond)
            return
        self._workers.submit(self._resume, submitted, user)

    def _resume(self, draft: Draft, user: str) -> None:
        from analyze_experiment.agent.app.session import AnalysisSession

        thread = draft.request.thread_id
        try:
            self.client.chat_update(
                channel=draft.channel,
                ts=draft.ts,
                text=f"Decided: {draft.request.stage}",
                blocks=decided_blocks(draft.request, draft.decision, user),
            )
            outcome = AnalysisSession(self.services, on_event=self._milestone(thread)).resume(thread, draft.decision)
            if outcome.pending is not None:
                self.post_approval(outcome.pending, draft.channel)
            elif outcome.report and outcome.run_id:
                self.post_summary(thread, outcome.run_id, outcome.report)
        except Exception as failed:  # reported in the channel; the thread stays resumable
            log.exception("resuming %s failed", thread)
            text = (
                f"The analysis paused: {failed}."
                if isinstance(failed, AnalysisPaused)
                else (f"The analysis stopped: {failed}. It is saved; resume with `analyze-experiment resume {thread}`.")
            )
            self.client.chat_postMessage(
                channel=draft.channel, thread_ts=draft.root_ts, text=self.services.redact(text)
            )
        finally:
            self.finished.set()

    # -- checks ---------------------------------------------------------------------------------------

    def _allowed_ref(self, body: dict[str, Any], respond: Callable[..., Any]) -> dict[str, str] | None:
        user = body["user"]["id"]
        if not self._is_approver(user):
            respond(
                text="Sorry, you are not on the list of people who may approve analyses.",
                replace_original=False,
                response_type="ephemeral",
            )
            return None
        ref: dict[str, str] = json.loads(body["actions"][0]["value"])
        return ref

    def _is_approver(self, user: str) -> bool:
        return user in self.services.settings.slack_approvers

    def _refresh(self, draft: Draft | None, respond: Callable[..., Any] | None) -> None:
        if draft is None:
            if respond is not None:
                _already_decided(respond)
            return
        self.client.chat_update(
            channel=draft.channel,
            ts=draft.ts,
            text=f"Approval needed: {draft.request.stage}",
            blocks=approval_blocks(draft.request, draft.decision),
        )


def _not_applied(respond: Callable[..., Any], reason: str) -> None:
    respond(
        text=f"Not applied: {reason}. Change it if needed and press Continue again.",
        replace_original=False,
        response_type="ephemeral",
    )


def _already_decided(respond: Callable[..., Any]) -> None:
    respond(text="This approval was already decided.", replace_original=False, response_type="ephemeral")


def _edit_from(meta: dict[str, str], values: dict[str, Any], user: str) -> Callable[[ApprovalDecision], None]:
    kind, item = meta["kind"], meta["item"]
    text = (values.get("text") or "").strip()
    if kind == "reject":
        return lambda d: d.reject.__setitem__(item, text or f"rejected in Slack by {user}")
    if kind == "description":
        return lambda d: setattr(d, "description", text)
    if kind == "focus":
        return lambda d: d.focus.append(text)
    if kind == "hypothesis":
        statement, sql = (values.get("statement") or "").strip(), (values.get("sql") or "").strip()
        if statement and not sql:
            raise UserError("a new statement needs its own SQL: the recorded query tested the old one")
        edit = HypothesisEdit(
            id=item, statement=statement or None, sql=sql or None, testing_plan=values.get("testing_plan") or None
        )
        return lambda d: d.hypothesis_edits.append(edit)
    if kind == "issue":
        severity = (values.get("severity") or "").strip().upper()
        if severity and severity not in Severity.__members__:
            raise UserError("severity must be LOW, MEDIUM, HIGH or CRITICAL")
        issue_edit = IssueEdit(
            id=item, title=values.get("title") or None, severity=Severity(severity) if severity else None
        )
        return lambda d: d.issue_edits.append(issue_edit)
    statement = (values.get("statement") or "").strip()
    if not statement:
        raise UserError("a hypothesis needs a statement")
    new = NewHypothesis(statement=statement, sql=values.get("sql") or None)
    return lambda d: d.add_hypotheses.append(new)
