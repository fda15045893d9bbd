"""Approvals at the terminal: show the request, collect one decision (approve, edit, reject, add, steer)."""

from __future__ import annotations

from rich.console import Console
from rich.prompt import Prompt
from rich.table import Table

from agent.approvals import ApprovalDecision, ApprovalRequest, HypothesisEdit, IssueEdit, NewHypothesis
from agent.console import plain
from agent.insights.models import Severity


class PauseRequested(Exception):
    """The person chose to stop here and decide later (`analyze-experiment resume`)."""


def auto_approve(request: ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision(by="auto", stage=request.stage)


def ask(request: ApprovalRequest, console: Console) -> ApprovalDecision:
    _show(request, console)
    decision = ApprovalDecision(by="cli", stage=request.stage)
    offered = {item.id for item in request.items}
    while True:
        actions = ["a", "q"] + (["e", "f"] if request.stage == "description" else [])
        actions += ["r", "e"] if request.items else []
        actions += ["+"] if request.stage == "hypotheses" else []
        hint = "a=approve, q=pause and decide later" + (", e=edit, r=reject" if request.items else "")
        hint += ", +=add a hypothesis" if request.stage == "hypotheses" else ""
        hint += ", e=edit description, f=add focus" if request.stage == "description" else ""
        choice = Prompt.ask(hint, choices=sorted(set(actions)), default="a", console=console)
        if choice == "a":
            return decision
        if choice == "q":
            raise PauseRequested
        if choice == "f":
            decision.focus.append(Prompt.ask("focus area", console=console))
        elif choice == "e" and request.stage == "description":
            decision.description = Prompt.ask("description", default=request.description or "", console=console)
        elif choice == "r":
            item = Prompt.ask("reject which", choices=sorted(offered), console=console)
            decision.reject[item] = Prompt.ask("why", console=console)
        elif choice == "e":
            _edit(request, decision, sorted(offered), console)
        elif choice == "+":
            statement = Prompt.ask("statement", console=console)
            sql = Prompt.ask("SQL selecting the traces concerned (empty for none)", default="", console=console)
            decision.add_hypotheses.append(NewHypothesis(statement=statement, sql=sql or None))


def _edit(request: ApprovalRequest, decision: ApprovalDecision, offered: list[str], console: Console) -> None:
    item = Prompt.ask("edit which", choices=offered, console=console)
    if request.stage == "hypotheses":
        statement = Prompt.ask("new statement (empty keeps it)", default="", console=console)
        sql = ""
        while statement and not sql.strip():
            sql = Prompt.ask("SQL selecting the traces of the new statement (the old query tested the old one)",
                             console=console)  # fmt: skip
        plan = Prompt.ask("new testing plan (empty keeps it)", default="", console=console)
        decision.hypothesis_edits.append(
            HypothesisEdit(id=item, statement=statement or None, testing_plan=plan or None, sql=sql or None)
        )
    else:
        title = Prompt.ask("new title, 5-8 words (empty keeps it)", default="", console=console)
        severity = Prompt.ask("severity", choices=["", *[s.value for s in Severity]], default="", console=console)
        decision.issue_edits.append(
            IssueEdit(id=item, title=title or None, severity=Severity(severity) if severity else None)
        )


def _show(request: ApprovalRequest, console: Console) -> None:
    console.rule(f"approval: {request.stage}")
    console.print(request.question)
    if request.stage == "description" and request.description:
        console.print(plain(request.description))
    if request.focus:
        console.print(plain("focus: " + "; ".join(request.focus)))
    if request.items:
        table = Table(show_lines=True)
        table.add_column("id")
        table.add_column("item")
        table.add_column("detail")
        for item in request.items:
            table.add_row(item.id, plain(item.title), plain(item.detail[:400]))
        console.print(table)
