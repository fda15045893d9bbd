"""Block Kit for approval requests, edit modals and the final summary. Untrusted text goes in as
plain_text (never mrkdwn) so a trace cannot format, link or mention anything in Slack."""

from __future__ import annotations

import json
from typing import Any

from analyze_experiment.agent.core.approvals import ApprovalDecision, ApprovalRequest

TEXT_LIMIT = 2900  # Slack's section text limit is 3000 characters


def ref(request: ApprovalRequest, item: str = "") -> str:
    """What every button carries: which thread, which approval, which item."""
    return json.dumps({"thread": request.thread_id, "stage": request.stage, "item": item})


def approval_blocks(request: ApprovalRequest, draft: ApprovalDecision) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(f"Approval: {request.stage}")},
        {"type": "section", "text": _plain(request.question)},
    ]
    if request.stage == "description" and request.description:
        blocks.append({"type": "section", "text": _plain(draft.description or request.description)})
        blocks.append(_actions([("Edit description", "edit_description", "")], request))
    for item in request.items:
        state = (
            "rejected: " + draft.reject[item.id]
            if item.id in draft.reject
            else "edited"
            if _edited(draft, item.id)
            else ""
        )
        blocks.append(
            {"type": "section", "text": _plain(f"{item.id}: {item.title}" + (f"  [{state}]" if state else ""))}
        )
        blocks.append(
            _actions(
                [
                    ("Approve", "approve_item", item.id),
                    ("Edit", "edit_item", item.id),
                    ("Reject", "reject_item", item.id),
                ],
                request,
            )
        )
    focus = [*request.focus, *draft.focus]
    if focus:
        blocks.append({"type": "context", "elements": [_plain("focus: " + "; ".join(focus))]})
    extra = [("Add hypothesis", "add_hypothesis", "")] if request.stage == "hypotheses" else []
    extra += [("Add focus area", "add_focus", "")] if request.stage == "description" else []
    blocks.append(_actions([*extra, ("Approve and continue", "continue", "")], request, primary="continue"))
    return blocks


def decided_blocks(request: ApprovalRequest, decision: ApprovalDecision, user: str) -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": _plain(f"Approval: {request.stage}")},
        {"type": "section", "text": _plain(f"Decided by {user}: {decision.summary()}")},
    ]


def edit_modal(request: ApprovalRequest, item: str, kind: str) -> dict[str, Any]:
    """kind: description, hypothesis, issue, add_hypothesis, focus, reject."""
    fields = {
        "description": [("text", "Description", request.description or "", True)],
        "hypothesis": [
            ("statement", "New statement", "", False),
            ("sql", "SQL selecting the traces of the new statement (needed with one)", "", True),
            ("testing_plan", "New testing plan", "", True),
        ],
        "issue": [
            ("title", "New title (5-8 words)", "", False),
            ("severity", "Severity (LOW, MEDIUM, HIGH, CRITICAL)", "", False),
        ],
        "add_hypothesis": [
            ("statement", "Statement", "", False),
            ("sql", "SQL selecting the traces concerned", "", True),
        ],
        "focus": [("text", "Focus area", "", False)],
        "reject": [("text", "Why reject it?", "", False)],
    }[kind]
    return {
        "type": "modal",
        "callback_id": "approval_edit",
        "private_metadata": json.dumps({**json.loads(ref(request, item)), "kind": kind}),
        "title": _plain("Edit" if kind not in {"reject", "focus"} else kind.capitalize()),
        "submit": _plain("Save"),
        "blocks": [
            {
                "type": "input",
                "block_id": name,
                "optional": kind not in {"reject", "focus", "add_hypothesis"} or name == "sql",
                "label": _plain(label),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": multi,
                    **({"initial_value": initial[:TEXT_LIMIT]} if initial else {}),
                },
            }
            for name, label, initial, multi in fields
        ],
    }


def summary_blocks(title: str, lines: list[str], link: str | None) -> list[dict[str, Any]]:
    text = "\n".join(lines) + (f"\nMLflow: {link}" if link else "")
    return [{"type": "header", "text": _plain(title)}, {"type": "section", "text": _plain(text)}]


def _edited(draft: ApprovalDecision, item: str) -> bool:
    return any(e.id == item for e in draft.hypothesis_edits) or any(e.id == item for e in draft.issue_edits)


def _actions(buttons: list[tuple[str, str, str]], request: ApprovalRequest, primary: str = "") -> dict[str, Any]:
    elements = []
    for label, action, item in buttons:
        button: dict[str, Any] = {
            "type": "button",
            "text": _plain(label),
            "action_id": f"{action}:{item}" if item else action,
            "value": ref(request, item),
        }
        if action == primary:
            button["style"] = "primary"
        elements.append(button)
    return {"type": "actions", "elements": elements}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": (text or " ")[:TEXT_LIMIT], "emoji": False}
