"""The approval contract every front end speaks: the CLI, Slack, and automatic approval.

The graph pauses with an `ApprovalRequest` and resumes with an `ApprovalDecision`. Front ends only
translate between these and their medium; what a decision does is decided in one place (the graph's
approval node), so a Slack click and a terminal answer cannot mean different things.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from analyze_experiment.agent.core.insights.models import Category, Severity, Text

Stage = Literal["description", "hypotheses", "issues"]


class ApprovalItem(BaseModel):
    id: str
    title: str
    detail: str = ""
    severity: Severity | None = Field(default=None, description="An issue's current severity.")


class ApprovalRequest(BaseModel):
    thread_id: str
    run_id: str
    experiment_id: str
    stage: Stage
    question: str
    description: str | None = None
    focus: list[str] = Field(default_factory=list, description="Focus areas settled so far.")
    items: list[ApprovalItem] = Field(default_factory=list)


class HypothesisEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^H[0-9]+$")
    statement: Text | None = Field(default=None, max_length=500)
    testing_plan: Text | None = Field(default=None, max_length=10000)
    sql: Text | None = Field(
        default=None,
        max_length=20000,
        description="The query selecting the traces the statement is about; required with a new statement (the "
        "old query tested the old one). Given alone, it replaces the query that tests the statement.",
    )


class IssueEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^I[0-9]+$")
    title: Text | None = Field(default=None, description="5-8 words, specific and fix-oriented.")
    severity: Severity | None = None
    description: Text | None = Field(default=None, max_length=10000)


class NewHypothesis(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: Text = Field(max_length=500)
    rationale: Text | None = Field(default=None, max_length=5000)
    testing_plan: Text | None = Field(default=None, max_length=10000)
    sql: Text | None = Field(default=None, max_length=20000, description="A query selecting the traces it is about.")
    category: Category | None = None


class ApprovalDecision(BaseModel):
    """Approve what is not rejected; optionally edit, add, and steer."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(default="cli", max_length=200)
    stage: Stage | None = Field(
        default=None, description="The approval this answers; a later one is not answered by it."
    )
    description: str | None = Field(default=None, description="The corrected description (description stage).")
    focus: list[str] = Field(default_factory=list, description="Focus areas to add.")
    reject: dict[str, str] = Field(default_factory=dict, description="Item id -> reason.")
    hypothesis_edits: list[HypothesisEdit] = Field(default_factory=list)
    issue_edits: list[IssueEdit] = Field(default_factory=list)
    add_hypotheses: list[NewHypothesis] = Field(default_factory=list)

    @field_validator("description")
    @classmethod
    def _description_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("a corrected description cannot be blank; leave it out to keep the current one")
        return value

    @field_validator("focus")
    @classmethod
    def _focus_not_blank(cls, value: list[str]) -> list[str]:
        if any(not area.strip() for area in value):
            raise ValueError("a focus area cannot be blank")
        return value

    def summary(self) -> str:
        parts = ["approved"]
        if self.description is not None:
            parts.append("description edited")
        if self.focus:
            parts.append("focus: " + "; ".join(self.focus))
        if self.reject:
            parts.append("rejected " + ", ".join(f"{k} ({v})" for k, v in self.reject.items()))
        edits = [e.id for e in self.hypothesis_edits] + [e.id for e in self.issue_edits]
        if edits:
            parts.append("edited " + ", ".join(edits))
        if self.add_hypotheses:
            parts.append(f"added {len(self.add_hypotheses)} hypothes{'is' if len(self.add_hypotheses) == 1 else 'es'}")
        return "; ".join(parts)[:4000]
