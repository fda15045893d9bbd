"""Typed scores of one finished analysis against its ground truth.

Matching rule: an issue matches a labelled problem when (a) at least two thirds of the issue's
evidence traces are among the problem's affected traces and (b) the traces its validated hypothesis's
query selects overlap the problem's affected traces with a Jaccard index of at least 0.5. Issue
recall is the share of labelled (non-strength) problems matched by some issue; issue precision the
share of reported issues that match a problem; evidence precision the share of reported issues'
evidence traces that lie in the affected set of the problem their issue matched (evidence of an
unmatched issue counts as wrong). The Jaccard index leaves out the traces where a random draw's
outcome cannot be seen (`unobserved_trace_ids`: no assessment was made there), from both sides: the
power that puts a problem in the recall is computed where it can be seen, and no analyst can tell a
bad answer nobody rated from a good one.

For the pooled scores of random draws (`evals.summary`) each problem records whether it was found and
each unmatched issue the problem its query overlaps most (`nearest`), to charge it to a family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from analyze_experiment.agent.core.insights.models import (
    Actor,
    Category,
    Census,
    Hypothesis,
    HypothesisStatus,
    Issue,
    IssueStatus,
)
from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.traces.engine import SqlEngine
from analyze_experiment.evals.cases import Expected, Problem

EVIDENCE_SHARE = 2 / 3
OVERLAP = 0.5


class IssueScore(BaseModel):
    issue_id: str
    title: str
    matched: str | None
    evidence_in_problem: int
    evidence: int
    affected: int
    nearest: str | None = None  # the matched problem, or the one its query's traces overlap most (if any)
    overlap: float = 0.0  # the Jaccard index of its query's traces with that problem's affected traces


class ProblemScore(BaseModel):
    kind: str
    outcome_family: str | None = None
    cause_family: str | None = None
    power: float | None = None
    affected: int = 0
    found: bool = False
    overlap: float = 0.0  # the best Jaccard index any reported issue's query reaches with it


class Scores(BaseModel):
    case: str
    model: str
    source: str | None = None  # the case's source: recording, held_out, random, control, experiment
    issue_recall: float | None
    issue_precision: float | None
    evidence_precision: float | None
    strengths_expected: int = 0
    strengths_validated: int = 0
    violations: list[str] = Field(default_factory=list)
    census_exact: bool | None = None
    hypotheses: dict[str, int] = Field(default_factory=dict)
    llm_calls: int = 0
    tokens: int = 0
    cost_usd: float | None = None
    wall_s: float = 0.0
    issues: list[IssueScore] = Field(default_factory=list)
    problems: list[ProblemScore] = Field(default_factory=list)
    run_id: str = ""


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def matched_problem(evidence: set[str], overlaps: dict[str, float], problems: dict[str, set[str]]) -> str | None:
    """Of the problems holding two thirds of the issue's evidence and overlapping its traces by OVERLAP,
    the one it overlaps most: where two problems share a slice, the first listed is not the better match
    (an issue that was one problem exactly matched its neighbour at 0.5 and left it unfound)."""
    qualifying = [
        kind
        for kind, truth in problems.items()
        if len(evidence & truth) >= EVIDENCE_SHARE * len(evidence) and overlaps[kind] >= OVERLAP
    ]
    return max(qualifying, key=overlaps.__getitem__, default=None)


@dataclass(frozen=True)
class ScoringContext:
    """What one finished analysis left, read once, and its issues matched to the truth: what every
    evaluator reads (pydantic_evals' `EvaluatorContext`)."""

    services: Services
    run_id: str
    expected: Expected
    engine: SqlEngine
    report: Path | None
    hypotheses: dict[str, Hypothesis]
    issue_scores: list[IssueScore]
    problem_scores: list[ProblemScore]
    census: Census
    metrics: dict[str, float]


class Evaluator(Protocol):
    """One metric of an analysis; its `name` is the `Scores` field it fills."""

    name: str

    def evaluate(self, context: ScoringContext) -> Any: ...


class IssueRecall:
    """The share of labelled problems some issue matches (None: nothing was planted)."""

    name = "issue_recall"

    def evaluate(self, context: ScoringContext) -> float | None:
        problems = context.problem_scores
        return sum(p.found for p in problems) / len(problems) if problems else None


class IssuePrecision:
    """The share of reported issues that match a problem (None: no issue)."""

    name = "issue_precision"

    def evaluate(self, context: ScoringContext) -> float | None:
        issues = context.issue_scores
        return sum(1 for s in issues if s.matched) / len(issues) if issues else None


class EvidencePrecision:
    """The share of issues' evidence traces inside the problem their issue matched."""

    name = "evidence_precision"

    def evaluate(self, context: ScoringContext) -> float | None:
        total = sum(s.evidence for s in context.issue_scores)
        return sum(s.evidence_in_problem for s in context.issue_scores) / total if total else None


class StrengthsExpected:
    name = "strengths_expected"

    def evaluate(self, context: ScoringContext) -> int:
        return sum(1 for p in context.expected.problems if p.strength)


class StrengthsValidated:
    name = "strengths_validated"

    def evaluate(self, context: ScoringContext) -> int:
        validated = HypothesisStatus.VALIDATED
        return sum(1 for h in context.hypotheses.values() if h.category is Category.STRENGTH and h.status is validated)


class RuleViolations:
    """Breaches of the workflow's rules in the stored state and the report (must be none)."""

    name = "violations"

    def evaluate(self, context: ScoringContext) -> list[str]:
        return violations(context.services, context.run_id, context.engine, context.report)


class CensusExact:
    """Whether the census counted the traces (and failures) the case holds (None: the case does not say)."""

    name = "census_exact"

    def evaluate(self, context: ScoringContext) -> bool | None:
        expected, census = context.expected, context.census
        if expected.traces is None:
            return None
        return census.trace_count == expected.traces and expected.errors in (None, census.error_count)


class HypothesisCounts:
    name = "hypotheses"

    def evaluate(self, context: ScoringContext) -> dict[str, int]:
        made = context.hypotheses.values()
        return {
            "proposed": len(made),
            "tested": sum(1 for h in made if h.evidence or h.status is not HypothesisStatus.TESTING),
            "validated": sum(1 for h in made if h.status is HypothesisStatus.VALIDATED),
            "rejected": sum(1 for h in made if h.status is HypothesisStatus.REJECTED),
        }


class LlmCalls:
    name = "llm_calls"

    def evaluate(self, context: ScoringContext) -> int:
        return int(sum(v for k, v in context.metrics.items() if k.endswith(".calls")))


class Tokens:
    name = "tokens"

    def evaluate(self, context: ScoringContext) -> int:
        return int(sum(v for k, v in context.metrics.items() if k.endswith("_tokens")))


class Cost:
    name = "cost_usd"

    def evaluate(self, context: ScoringContext) -> float | None:
        costs = [v for k, v in context.metrics.items() if k.endswith(".cost_usd")]
        return round(sum(costs), 6) if costs else None


EVALUATORS: tuple[Evaluator, ...] = (
    IssueRecall(),
    IssuePrecision(),
    EvidencePrecision(),
    StrengthsExpected(),
    StrengthsValidated(),
    RuleViolations(),
    CensusExact(),
    HypothesisCounts(),
    LlmCalls(),
    Tokens(),
    Cost(),
)


def score(
    services: Services,
    run_id: str,
    expected: Expected,
    *,
    case: str,
    model: str,
    wall_s: float,
    report: Path | None,
    source: str | None = None,
) -> Scores:
    context = read_analysis(services, run_id, expected, report)
    metrics = {evaluator.name: evaluator.evaluate(context) for evaluator in EVALUATORS}
    return Scores(
        case=case,
        model=model,
        source=source,
        run_id=run_id,
        wall_s=round(wall_s, 2),
        **metrics,
        issues=context.issue_scores,
        problems=context.problem_scores,
    )


def read_analysis(services: Services, run_id: str, expected: Expected, report: Path | None) -> ScoringContext:
    """The analysis's documents, and each reported issue matched to the problem it found, if any."""
    insights = services.insights
    engine = services.traces_table(insights.get_analysis(run_id).experiment_id)
    engine.row_cap = 1_000_000
    hypotheses = {h.id: h for h in insights.list_hypotheses(run_id)}
    reported = [i for i in insights.list_issues(run_id) if i.status is not IssueStatus.REJECTED]
    selected = {
        i.id: _selected(engine, query.query) if (query := hypotheses[i.hypothesis_id].selection) else set()
        for i in reported
    }
    issue_scores = [_issue_score(issue, selected[issue.id], expected) for issue in reported]
    matched = {s.matched for s in issue_scores if s.matched}
    problem_scores = [
        ProblemScore(
            kind=p.kind,
            outcome_family=p.outcome_family,
            cause_family=p.cause_family,
            power=p.power,
            affected=len(p.affected_trace_ids),
            found=p.kind in matched,
            overlap=round(max((_seen_overlap(s, p) for s in selected.values()), default=0.0), 3),
        )
        for p in expected.problems
        if not p.strength
    ]
    return ScoringContext(
        services=services,
        run_id=run_id,
        expected=expected,
        engine=engine,
        report=report,
        hypotheses=hypotheses,
        issue_scores=issue_scores,
        problem_scores=problem_scores,
        census=insights.get_census(run_id),
        metrics=services.client.get_run(run_id).data.metrics,
    )


def _seen_overlap(selection: set[str], problem: Problem) -> float:
    unseen = set(problem.unobserved_trace_ids)
    return jaccard(selection - unseen, set(problem.affected_trace_ids) - unseen)


def _issue_score(issue: Issue, selection: set[str], expected: Expected) -> IssueScore:
    labelled = [p for p in expected.problems if not p.strength]
    problems = {p.kind: set(p.affected_trace_ids) for p in labelled}
    evidence = {e.trace_id for e in issue.evidence}
    overlaps = {p.kind: _seen_overlap(selection, p) for p in labelled}
    match = matched_problem(evidence, overlaps, problems)
    nearest = match or max((k for k, v in overlaps.items() if v > 0), key=overlaps.__getitem__, default=None)
    return IssueScore(
        issue_id=issue.id,
        title=issue.title,
        matched=match,
        evidence_in_problem=len(evidence & problems[match]) if match else 0,
        evidence=len(evidence),
        affected=len(selection),
        nearest=nearest,
        overlap=round(overlaps[nearest], 3) if nearest else 0.0,
    )


def violations(services: Services, run_id: str, engine: SqlEngine, report: Path | None) -> list[str]:
    """Breaches of the workflow's rules, found from the stored state (must be none)."""
    from analyze_experiment.agent.core.traces.links import TraceLinks

    insights = services.insights
    analysis = insights.get_analysis(run_id)
    hypotheses = {h.id: h for h in insights.list_hypotheses(run_id)}
    issues = insights.list_issues(run_id)
    found: list[str] = []
    cited = {e.trace_id for h in hypotheses.values() for e in h.evidence} | {
        e.trace_id for i in issues for e in i.evidence
    }
    for trace_id in sorted(cited - TraceLinks(services.client).linked(analysis.experiment_id, run_id, cited)):
        found.append(f"evidence trace {trace_id} is not linked to the analysis run")
    for h in hypotheses.values():
        by_person = bool(h.history) and h.history[-1].actor is Actor.PERSON
        if h.status is HypothesisStatus.VALIDATED and not any(e.supports for e in h.evidence):
            found.append(f"{h.id} is VALIDATED without supporting evidence")
        if h.status is HypothesisStatus.REJECTED and not by_person and all(e.supports for e in h.evidence):
            found.append(f"{h.id} is REJECTED without refuting evidence")
    for i in issues:
        if (
            i.status in {IssueStatus.OPEN, IssueStatus.IN_PROGRESS}
            and hypotheses[i.hypothesis_id].status is not HypothesisStatus.VALIDATED
        ):
            found.append(f"{i.id} stands on {i.hypothesis_id}, which is not VALIDATED")
    if report is not None and report.exists():
        found += _unbacked_numbers(report.read_text(encoding="utf-8"), engine, hypotheses, issues)
    return found


def _unbacked_numbers(text: str, engine: SqlEngine, hypotheses: dict[str, Any], issues: list[Any]) -> list[str]:
    """The report's headline numbers, checked against the same queries run independently."""
    found = []
    total = int(engine.execute("SELECT count(*) FROM traces").rows[0][0])
    shown = re.search(r"^\| traces \| (\d+) \|$", text, re.M)
    if not shown or int(shown[1]) != total:
        found.append(f"the report's trace count ({shown[1] if shown else 'missing'}) is not {total}")
    for issue in issues:
        source = hypotheses[issue.hypothesis_id]
        if not source.selection or issue.status is IssueStatus.REJECTED:
            continue
        count = len(_selected(engine, source.selection.query))
        line = re.search(rf"^### {issue.id}:.*?^- Traces affected: (\d+)", text, re.M | re.S)
        if not line or int(line[1]) != count:
            found.append(
                f"{issue.id}: the report says {line[1] if line else 'nothing'} traces affected, its query selects {count}"
            )
        allowed = {count} | {
            int(n) for q in source.sql_queries for n in re.findall(r"^(\d+) rows", q.result_summary or "")
        }
        for n, m in re.findall(r"(\d+) of (\d+) traces", issue.description):
            if int(m) != total or int(n) not in allowed:
                found.append(f"{issue.id}: '{n} of {m} traces' in its description comes from no recorded query")
    return found


def _selected(engine: SqlEngine, query: str) -> set[str]:
    return set(engine.execute(query).trace_ids(first_column_fallback=True))
