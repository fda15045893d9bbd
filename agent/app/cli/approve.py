"""Approvals at the terminal: show the request, collect one decision (approve, edit, reject, add, steer).

Every change is confirmed as it is made, so what is applied at `a` is what the person saw; `q` with
changes made asks before dropping them.
"""

from __future__ import annotations

from rich.console import Console
from rich.prompt import Confirm, Prompt
from rich.table import Table
from rich.text import Text

from analyze_experiment.agent.app.console import plain
from analyze_experiment.agent.core.approvals import (
    ApprovalDecision,
    ApprovalRequest,
    HypothesisEdit,
    IssueEdit,
    NewHypothesis,
)
from analyze_experiment.agent.core.insights.models import Severity

DETAIL_CHARS = 220


class PauseRequested(Exception):
    """The person chose to stop here and decide later (`analyze-experiment resume`)."""


def auto_approve(request: ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision(by="auto", stage=request.stage)


def ask(request: ApprovalRequest, console: Console) -> ApprovalDecision:
    _show(request, console)
    decision = ApprovalDecision(by="cli", stage=request.stage)
    while True:
        choice = Prompt.ask(_hint(request), choices=_actions(request), default="a", console=console)
        if choice == "a":
            return decision
        if choice == "q":
            if _unchanged(decision) or Confirm.ask(
                f"pause and drop the changes made here ({decision.summary().removeprefix('approved; ')})?",
                default=False,
                console=console,
            ):
                raise PauseRequested
            continue
        _act(choice, request, decision, console)


def _act(choice: str, request: ApprovalRequest, decision: ApprovalDecision, console: Console) -> None:
    if choice == "f":
        area = _required("focus area", console)
        decision.focus.append(area)
        console.print(plain(f"focus added: {area}"), style="green")
    elif choice == "e" and request.stage == "description":
        decision.description = _required("description", console, default=request.description or "")
        console.print("description changed", style="green")
    elif choice == "r":
        _reject(request, decision, console)
    elif choice == "e":
        _edit(request, decision, console)
    elif choice == "+":
        _add(decision, console)


def _reject(request: ApprovalRequest, decision: ApprovalDecision, console: Console) -> None:
    item = _pick("reject which", request, console)
    if item is None:
        return
    decision.reject[item] = _required(f"why reject {item}", console)
    console.print(plain(f"{item} will be rejected: {decision.reject[item]}"), style="green")


def _edit(request: ApprovalRequest, decision: ApprovalDecision, console: Console) -> None:
    item = _pick("edit which", request, console)
    if item is None:
        return
    if request.stage == "hypotheses":
        statement = Prompt.ask("new statement (empty keeps it)", default="", show_default=False, console=console)
        sql = _required("SQL selecting the traces of the new statement", console) if statement.strip() else ""
        plan = Prompt.ask("new testing plan (empty keeps it)", default="", show_default=False, console=console)
        edit = HypothesisEdit(
            id=item, statement=statement.strip() or None, sql=sql or None, testing_plan=plan.strip() or None
        )
        decision.hypothesis_edits.append(edit)
    else:
        title = Prompt.ask("new title, 5-8 words (empty keeps it)", default="", show_default=False, console=console)
        severity = _severity(request, item, console)
        decision.issue_edits.append(IssueEdit(id=item, title=title.strip() or None, severity=severity))
    console.print(f"{item} edited", style="green")


def _add(decision: ApprovalDecision, console: Console) -> None:
    statement = _required("statement", console)
    sql = _required("SQL selecting the traces concerned (SELECT trace_id FROM traces WHERE ...)", console)
    decision.add_hypotheses.append(NewHypothesis(statement=statement, sql=sql))
    console.print(plain(f"hypothesis added: {statement}"), style="green")


def _pick(question: str, request: ApprovalRequest, console: Console) -> str | None:
    """An offered item by id (any case); empty cancels."""
    titles = {item.id: item.title for item in request.items}
    for item_id, title in titles.items():
        console.print(Text(f"  {item_id}  ", style="bold") + plain(_cut(title, console.width - 8)))
    while True:
        answer = Prompt.ask(f"{question} (empty to cancel)", default="", show_default=False, console=console)
        wanted = answer.strip().upper()
        if not wanted:
            return None
        if wanted in titles:
            return wanted
        console.print(f"{answer.strip()} is not offered here; choose one of {', '.join(titles)}", style="red")


def _severity(request: ApprovalRequest, item: str, console: Console) -> Severity | None:
    current = next((i.severity for i in request.items if i.id == item), None)
    names = "/".join(s.value for s in Severity)
    while True:
        answer = (
            Prompt.ask(
                f"severity {names} (now {current or 'unset'}; empty keeps it)",
                default="",
                show_default=False,
                console=console,
            )
            .strip()
            .upper()
        )
        if not answer:
            return None
        if answer in Severity.__members__:
            return Severity(answer)
        console.print(f"severity is one of {names}", style="red")


def _required(question: str, console: Console, default: str = "") -> str:
    while True:
        answer = Prompt.ask(question, default=default, show_default=bool(default), console=console).strip()
        if answer:
            return answer
        console.print(f"{question}: an answer is needed", style="red")


def _unchanged(decision: ApprovalDecision) -> bool:
    return decision == ApprovalDecision(by=decision.by, stage=decision.stage)


def _actions(request: ApprovalRequest) -> list[str]:
    actions = ["a", "q"] + (["e", "f"] if request.stage == "description" else [])
    actions += ["r", "e"] if request.items else []
    actions += ["+"] if request.stage == "hypotheses" else []
    return sorted(set(actions))


def _hint(request: ApprovalRequest) -> str:
    hint = "a=approve, q=pause" + (", r=reject, e=edit" if request.items else "")
    hint += ", +=add a hypothesis" if request.stage == "hypotheses" else ""
    return hint + (", e=edit description, f=add focus" if request.stage == "description" else "")


def _show(request: ApprovalRequest, console: Console) -> None:
    console.rule(f"approval: {request.stage}")
    console.print(request.question)
    if request.stage == "description" and request.description:
        console.print(plain(request.description))
    if request.focus:
        console.print(plain("focus: " + "; ".join(request.focus)))
    if not request.items:
        return
    table = Table(show_lines=True, expand=True)
    table.add_column("id", no_wrap=True)
    table.add_column("item", ratio=1)
    plans = {item.detail.partition("\nPlan: ")[2] for item in request.items}
    shared = plans.pop() if len(plans) == 1 and len(request.items) > 1 else ""
    for item in request.items:
        shown = plain(item.title)
        detail = item.detail.partition("\nPlan: ")[0] if shared else item.detail
        if detail.strip():
            shown.append("\n" + _cut(detail, DETAIL_CHARS), style="dim")
        table.add_row(item.id, shown)
    console.print(table)
    if shared:  # the same plan for every item: once, not under each
        console.print(plain("plan for each: " + _cut(shared, DETAIL_CHARS * 2)), style="dim")


def _cut(text: str, limit: int) -> str:
    """At a word boundary, so nothing is cut mid-word."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 1)].rsplit(" ", 1)[0] + "…"
