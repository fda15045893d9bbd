"""What a node asks of an analyst. Analysts read and query through a `AnalysisTools`; nodes persist."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from analyze_experiment.agent.core.insights.models import (
    Analysis,
    Category,
    Census,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    SegmentStatistics,
    Severity,
)
from analyze_experiment.agent.core.report import ReportFacts
from analyze_experiment.agent.core.traces.views import TraceView
from analyze_experiment.tools.protocols import AnalysisTools


class ProposedHypothesis(BaseModel):
    """What a model may propose: the fields it can fill in."""

    statement: str = Field(min_length=1, max_length=500)
    rationale: str = Field(min_length=1, max_length=5000, description="Cite the census numbers (Q ids).")
    testing_plan: str = Field(min_length=1, max_length=10000)
    sql: str | None = Field(default=None, description="Databricks SQL selecting the traces concerned.")
    category: Category | None = None


class HypothesisDraft(ProposedHypothesis):
    """A proposal plus the discovery engine's test figures, which only the engine supplies."""

    statistics: SegmentStatistics | None = None


class Verdict(BaseModel):
    """`status=None` means the test ran out of budget or could not decide: the hypothesis stays TESTING."""

    status: HypothesisStatus | None
    evidence: list[Evidence] = Field(default_factory=list)
    reason: str


class IssueDraft(BaseModel):
    title: str
    description: str
    severity: Severity
    evidence: list[Evidence]
    category: Category | None = None


class Analyst(Protocol):
    name: str

    def describe(self, tools: AnalysisTools, samples: list[TraceView]) -> str: ...

    def hypothesize(
        self, tools: AnalysisTools, census: Census, analysis: Analysis, limit: int
    ) -> list[HypothesisDraft]: ...

    def test(self, tools: AnalysisTools, hypothesis: Hypothesis) -> Verdict: ...

    def draft_issue(self, tools: AnalysisTools, hypothesis: Hypothesis) -> IssueDraft | None: ...

    def recommend(self, facts: ReportFacts) -> list[str]: ...
