"""What the discovery engine reports, as stored in the census (`sections["discovery"]`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from analyze_experiment.agent.core.insights.models import SegmentStatistics, Severity

FindingKind = Literal["problem", "strength", "near_miss"]


class FindingRecord(BaseModel):
    kind: FindingKind
    statement: str
    outcome_explanation: str
    affected_sql: str
    affected_count: int
    severity: Severity
    weighted_share: float = Field(description="Share of traces affected, times the outcome's weight.")
    statistics: SegmentStatistics
    also: list[str] = Field(default_factory=list, description="Other outcomes over mostly the same traces.")


class LookedAt(BaseModel):
    """How we looked: what was tested, how many tests, at what false discovery rate."""

    traces: int
    outcomes: list[str]
    features: list[str]
    tests: int
    counted: int = Field(0, description="Tests that could reach significance, which the correction counts.")
    pairs_tested: int
    significant: int
    fdr: float
    min_support: int
    min_ratio: float
    max_pair_members: int
    queries: int
    seconds: float


class DiscoveryReport(BaseModel):
    looked: LookedAt
    findings: list[FindingRecord] = Field(default_factory=list)
