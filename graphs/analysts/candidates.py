"""The discovery engine's findings as candidate hypotheses, for both analysts.

The census holds the engine's report (`sections["discovery"]`); a census written before the engine
existed is scanned now. Candidates come ranked: problems by weighted impact (a focus area a person
named first), then strengths, then prompt-injection text, then the leads a test should refute.
"""

from __future__ import annotations

import re

from analyze_experiment.agent.core.discovery import DiscoveryReport, FindingRecord, discover
from analyze_experiment.agent.core.discovery.scan import PERMUTATIONS
from analyze_experiment.agent.core.insights.models import Analysis, Category, Census, SegmentStatistics
from analyze_experiment.graphs.analysts.base import HypothesisDraft
from analyze_experiment.graphs.analysts.injections import injection_draft
from analyze_experiment.tools.protocols import AnalysisTools

OPERATIONAL = {
    "trace_failed",
    "span_failed",
    "trace_slow",
    "trace_idle",
    "span_slow",
    "repeated_call",
    "assessment_error",
    "error",
}
MAX_STRENGTHS = 2
MAX_NEAR_MISSES = 2
FOCUS_SHARE = 0.5  # a finding is about a focus area when most of its traces mention it
TESTING_PLAN = (
    "1. Q1 selects the affected traces (the segment's traces with the outcome). 2. Count the segment against the "
    "rest of the outcome's population again and recompute the test: keep the claim only if its p-value is within "
    "its Benjamini-Hochberg cutoff (over the run's tests and its outcome's) and the risk ratio's 95% interval stays clear of 1.5. 3. Read three "
    "affected traces and note what each shows; when the test fails, read a segment trace without the outcome."
)


def discovery(tools: AnalysisTools, census: Census) -> DiscoveryReport:
    stored = census.sections.get("discovery")
    if stored:
        return DiscoveryReport.model_validate(stored)
    return discover(tools.sql_engine(), tools.analysis().outcomes)


def candidates(tools: AnalysisTools, census: Census, analysis: Analysis, limit: int) -> list[HypothesisDraft]:
    report = discovery(tools, census)
    problems = _focused(tools, [f for f in report.findings if f.kind == "problem"], analysis.focus)
    strengths = [f for f in report.findings if f.kind == "strength"][:MAX_STRENGTHS]
    misses = [f for f in report.findings if f.kind == "near_miss"][:MAX_NEAR_MISSES]
    injected = injection_draft(tools, census)
    extras = [_draft(f, census) for f in strengths] + ([injected] if injected else [])
    chosen = [_draft(f, census) for f in problems][: max(limit - len(extras), 1)]
    return [*chosen, *extras, *(_draft(f, census) for f in misses)][:limit]


def _focused(tools: AnalysisTools, findings: list[FindingRecord], focus: list[str]) -> list[FindingRecord]:
    """Findings about a focus area go first: named in the statement, or most of their traces mention it.

    A focus area is words, matched as stems ("refunds" finds "refund"); a finding's relevance is the
    share of its traces mentioning each word, averaged over the words, so a word every trace has
    ("order") does not decide alone. The rest keep the engine's order."""
    stems = _stems(focus)
    if not stems or not findings:
        return findings
    text = "lower(coalesce(request, '') || ' ' || coalesce(response, ''))"
    shares = ", ".join(f"avg(CASE WHEN {text} LIKE '%{w}%' THEN 1.0 ELSE 0.0 END) AS s{i}" for i, w in enumerate(stems))
    relevance = {}
    for finding in findings:
        result = tools.execute_sql(
            f"SELECT {shares} FROM traces WHERE trace_id IN (SELECT trace_id FROM ({finding.affected_sql}) a)",
            record=False,
        )
        values = [float(v or 0) for v in result.rows[0]] if result.rows else [0.0]
        named = any(w in finding.statement.lower() for w in stems)
        relevance[finding.statement] = 1.0 if named else sum(values) / len(values)
    return sorted(findings, key=lambda f: -r if (r := relevance[f.statement]) >= FOCUS_SHARE else 0.0)


def _stems(focus: list[str]) -> list[str]:
    words = {w.lower() for area in focus for w in re.findall(r"[A-Za-z0-9_]{3,}", area)}
    return sorted({re.sub(r"(ies|es|s|ing|ed)$", "", w) if len(w) > 5 else w for w in words} - {""})


def _draft(finding: FindingRecord, census: Census) -> HypothesisDraft:
    stats = finding.statistics
    return HypothesisDraft(
        statement=finding.statement,
        rationale=rationale(finding, census),
        testing_plan=TESTING_PLAN,
        sql=finding.affected_sql,
        category=category(stats),
        statistics=stats,
    )


def category(stats: SegmentStatistics) -> Category:
    if stats.strength:
        return Category.STRENGTH
    return Category.OPERATIONAL if stats.outcome_family in OPERATIONAL else Category.QUALITY


def rationale(finding: FindingRecord, census: Census) -> str:
    s = finding.statistics
    text = (
        f"Discovery engine: {s.outcome} ({finding.outcome_explanation}). Where {s.segment}: {s.k}/{s.n} "
        f"against {s.k_rest}/{s.n_rest} elsewhere; risk ratio {s.risk_ratio:.2f} (95% CI {s.ci_low:.2f} to "
        f"{_bound(s.ci_high)}); {describe_test(s)}. Census baseline: {census.error_count} of "
        f"{census.trace_count} traces failed (Q1)."
    )
    if finding.also:
        text += " The same traces also show: " + "; ".join(finding.also) + "."
    return text[:5000]


TEST_NAMES = {
    "fisher": "Fisher's exact test",
    "chi2": "chi-square test",
    "scan": f"scan statistic over every stretch of time ({PERMUTATIONS} shuffles)",
    "binomial": "binomial test of the slice's share of the bad calls against its share of the calls",
}


def describe_test(s: SegmentStatistics) -> str:
    test = TEST_NAMES.get(s.test, s.test)
    text = f"{test} p = {s.p_value:.2g}, Benjamini-Hochberg q = {s.q_value:.2g} over {s.tests_in_run} tests (FDR {s.fdr:g})"
    if s.calls:
        bad, calls, bad_rest, calls_rest = s.calls
        text += (
            f"; per call of the span, {bad}/{calls} went bad in the segment against {bad_rest}/{calls_rest} elsewhere"
        )
    if s.explained_ratio > 1:
        text += f"; the segment calls the span more often, which alone explains a risk ratio of {s.explained_ratio:.2f}"
    return text


def _bound(value: float) -> str:
    return "unbounded" if value >= 1e6 else f"{value:.2f}"
