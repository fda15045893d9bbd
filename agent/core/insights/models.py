"""The documents an analysis is made of, as stored in MLflow.

Every model here is serialised to one JSON artifact of the analysis run. Field names are part of the
`--output json` contract (README, "JSON output"): add fields, never rename them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


def utc_now() -> datetime:
    return datetime.now(UTC)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("cannot be blank")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]


class AnalysisStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    ARCHIVED = "ARCHIVED"


class HypothesisStatus(StrEnum):
    TESTING = "TESTING"
    VALIDATED = "VALIDATED"
    REJECTED = "REJECTED"


class Severity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class IssueStatus(StrEnum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    REJECTED = "REJECTED"


class Category(StrEnum):
    """Where a finding belongs in the report."""

    OPERATIONAL = "operational"
    QUALITY = "quality"
    STRENGTH = "strength"


class Actor(StrEnum):
    """Who asked for a change. Only a person may reopen a rejected hypothesis."""

    PERSON = "person"
    AGENT = "agent"


class Document(BaseModel):
    """Fields every stored object carries; `version` drives optimistic concurrency."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    version: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str = Field(min_length=1, max_length=200)
    rationale: Text = Field(min_length=1, max_length=4000)
    supports: bool


class SqlQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^Q[0-9]+$", description="Query id such as Q1, cited by testing plans.")
    query: Text = Field(min_length=1, max_length=20000)
    result_summary: str | None = Field(default=None, max_length=4000, description="What it showed.")


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_status: str
    to_status: str
    reason: str
    actor: Actor
    at: datetime = Field(default_factory=utc_now)


class Approval(BaseModel):
    """A person's (or a script's) decision at one of the workflow's approval points."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    summary: str = Field(max_length=4000)
    by: str = Field(default="", max_length=200, description="cli, auto, or the Slack user who decided.")
    at: datetime = Field(default_factory=utc_now)


class Analysis(Document):
    experiment_id: str
    run_id: str
    name: Text = Field(min_length=1, max_length=250)
    description: str = Field(default="", max_length=5000)
    status: AnalysisStatus = AnalysisStatus.ACTIVE
    history: list[StatusChange] = Field(default_factory=list)
    thread_id: str | None = Field(default=None, description="The agent's resumable thread, when it ran one.")
    focus: list[str] = Field(default_factory=list, description="Areas a person asked the analysis to look at.")
    outcomes: dict[str, str] = Field(
        default_factory=dict, description="Outcomes a person added: name -> SQL boolean over the traces table."
    )
    approvals: list[Approval] = Field(default_factory=list)


class Census(Document):
    """The baseline snapshot. Its computation lives in `analyze_experiment.agent.core.traces.census`."""

    trace_count: int = Field(ge=0)
    ok_count: int = Field(ge=0)
    error_count: int = Field(ge=0)
    error_rate: float = Field(ge=0, le=1)
    latency_ms: dict[str, float | None] = Field(default_factory=dict)
    sections: dict[str, Any] = Field(
        default_factory=dict,
        description="Further tables (span and tool frequencies, error buckets, quality markers...).",
    )
    queries: list[SqlQuery] = Field(default_factory=list, description="How each number was obtained.")


_HYPOTHESIS_ID = re.compile(r"^H[0-9]+$")
_ISSUE_ID = re.compile(r"^I[0-9]+$")


class SegmentStatistics(BaseModel):
    """The discovery engine's test of a segment against the rest of the traffic, stored with the
    hypothesis it proposed so the numbers and their provenance travel with the claim."""

    outcome: str = Field(max_length=500, description="What went wrong (or right) in a trace.")
    outcome_family: str = Field(max_length=100)
    segment: str = Field(max_length=1000, description="The slice of traffic, in words.")
    outcome_sql: str = Field(max_length=20000, description="SQL boolean: the trace has the outcome.")
    population_sql: str | None = Field(default=None, max_length=20000, description="SQL boolean: it could have.")
    segment_sql: str = Field(max_length=20000, description="SQL boolean: the trace is in the segment.")
    n: int = Field(ge=0, description="Segment traces in the outcome's population.")
    k: int = Field(ge=0, description="Of those, traces with the outcome.")
    n_rest: int = Field(ge=0)
    k_rest: int = Field(ge=0)
    risk_ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    q_value: float = Field(description="Benjamini-Hochberg adjusted p over every test of the run.")
    p_cutoff: float = Field(description="The largest raw p-value the run's correction accepted.")
    test: str = Field(description="fisher, chi2, scan (a burst in time) or binomial (bad calls per call)")
    tests_in_run: int
    fdr: float
    strength: bool = False
    two_sided: bool = Field(
        default=True, description="False where only a higher rate could be reported: the tests are one-sided."
    )
    explained_ratio: float = Field(
        default=1.0,
        description="The risk ratio the segment's extra calls of the span account for; the interval must clear it.",
    )
    calls_sql: str | None = Field(default=None, max_length=20000, description="SQL: the trace's calls of the span.")
    bad_calls_sql: str | None = Field(default=None, max_length=20000, description="SQL: of those, the bad ones.")
    magnitude_sql: str | None = Field(
        default=None, max_length=20000, description="SQL: how far into the outcome a trace is (its slow call's ms)."
    )
    calls: tuple[int, int, int, int] | None = Field(
        default=None, description="Bad calls and calls in the segment, then in the rest: the per-call test's counts."
    )


class Hypothesis(Document):
    id: str
    statement: Text = Field(min_length=1, max_length=500)
    rationale: Text = Field(min_length=1, max_length=5000)
    testing_plan: Text = Field(min_length=1, max_length=10000)
    status: HypothesisStatus = HypothesisStatus.TESTING
    evidence: list[Evidence] = Field(default_factory=list)
    sql_queries: list[SqlQuery] = Field(default_factory=list)
    history: list[StatusChange] = Field(default_factory=list)
    category: Category | None = None
    author: Actor = Actor.AGENT
    statistics: SegmentStatistics | None = None
    selection_id: str | None = Field(
        default=None,
        description="The query selecting the traces the statement is about: Q1 unless the statement was edited "
        "with a query of its own.",
    )
    notes: list[str] = Field(default_factory=list, description="Why a test stopped without a verdict.")

    @property
    def selection(self) -> SqlQuery | None:
        """The query that tests the statement as it reads now."""
        wanted = self.selection_id or (self.sql_queries[0].id if self.sql_queries else None)
        return next((q for q in self.sql_queries if q.id == wanted), None)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _HYPOTHESIS_ID.match(value):
            raise ValueError("hypothesis ids look like H1, H2, ...")
        return value


class Issue(Document):
    id: str
    title: Text
    description: Text = Field(min_length=1, max_length=10000)
    severity: Severity
    status: IssueStatus = IssueStatus.OPEN
    hypothesis_id: str
    evidence: list[Evidence] = Field(default_factory=list)
    native_issue_id: str | None = Field(
        default=None, description="MLflow's own Issue entity, where the tracking store has one."
    )
    history: list[StatusChange] = Field(default_factory=list)
    category: Category | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ISSUE_ID.match(value):
            raise ValueError("issue ids look like I1, I2, ...")
        return value
