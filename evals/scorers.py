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
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from analyze_experiment.agent.core.insights.models import Actor, Category, HypothesisStatus, IssueStatus
from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.traces.engine import SqlEngine
from analyze_experiment.evals.cases import Expected

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
    qualifying = [kind for kind, truth in problems.items()
                  if len(evidence & truth) >= EVIDENCE_SHARE * len(evidence) and overlaps[kind] >= OVERLAP]  # fmt: skip
    return max(qualifying, key=overlaps.__getitem__, default=None)


def score(services: Services, run_id: str, expected: Expected, *, case: str, model: str, wall_s: float,
          report: Path | None, source: str | None = None) -> Scores:  # fmt: skip
    insights = services.insights
    analysis = insights.get_analysis(run_id)
    engine = services.traces_table(analysis.experiment_id)
    engine.row_cap = 1_000_000
    hypotheses = {h.id: h for h in insights.list_hypotheses(run_id)}
    reported = [i for i in insights.list_issues(run_id) if i.status is not IssueStatus.REJECTED]
    problems = {p.kind: set(p.affected_trace_ids) for p in expected.problems if not p.strength}
    unseen = {p.kind: set(p.unobserved_trace_ids) for p in expected.problems}

    def seen_overlap(selection: set[str], kind: str) -> float:
        return jaccard(selection - unseen[kind], problems[kind] - unseen[kind])

    selections = {i.id: hypotheses[i.hypothesis_id].selection for i in reported}
    selected = {key: _selected(engine, query.query) if query else set() for key, query in selections.items()}

    issue_scores = []
    for issue in reported:
        evidence = {e.trace_id for e in issue.evidence}
        overlaps = {kind: seen_overlap(selected[issue.id], kind) for kind in problems}
        match = matched_problem(evidence, overlaps, problems)
        inside = len(evidence & problems[match]) if match else 0
        nearest = match or max((k for k, v in overlaps.items() if v > 0), key=overlaps.__getitem__, default=None)
        issue_scores.append(IssueScore(issue_id=issue.id, title=issue.title, matched=match,
                                       evidence_in_problem=inside, evidence=len(evidence),
                                       affected=len(selected[issue.id]), nearest=nearest,
                                       overlap=round(overlaps[nearest], 3) if nearest else 0.0))  # fmt: skip
    matched = {s.matched for s in issue_scores if s.matched}
    problem_scores = [
        ProblemScore(kind=p.kind, outcome_family=p.outcome_family, cause_family=p.cause_family, power=p.power,
                     affected=len(p.affected_trace_ids), found=p.kind in matched,
                     overlap=round(max((seen_overlap(selected[i.id], p.kind) for i in reported), default=0.0), 3))
        for p in expected.problems if not p.strength
    ]  # fmt: skip
    evidence_total = sum(s.evidence for s in issue_scores)
    strengths = [
        h for h in hypotheses.values() if h.category is Category.STRENGTH and h.status is HypothesisStatus.VALIDATED
    ]
    census = insights.get_census(run_id)
    metrics = services.client.get_run(run_id).data.metrics
    costs = [v for k, v in metrics.items() if k.endswith(".cost_usd")]
    return Scores(
        case=case, model=model, source=source, run_id=run_id, wall_s=round(wall_s, 2),
        issue_recall=len(matched) / len(problems) if problems else None,
        issue_precision=sum(1 for s in issue_scores if s.matched) / len(issue_scores) if issue_scores else None,
        evidence_precision=sum(s.evidence_in_problem for s in issue_scores) / evidence_total if evidence_total else None,
        strengths_expected=sum(1 for p in expected.problems if p.strength), strengths_validated=len(strengths),
        violations=violations(services, run_id, engine, report),
        census_exact=(census.trace_count == expected.traces and (expected.errors is None or census.error_count == expected.errors))
        if expected.traces is not None else None,
        hypotheses={"proposed": len(hypotheses),
                    "tested": sum(1 for h in hypotheses.values() if h.evidence or h.status is not HypothesisStatus.TESTING),
                    "validated": sum(1 for h in hypotheses.values() if h.status is HypothesisStatus.VALIDATED),
                    "rejected": sum(1 for h in hypotheses.values() if h.status is HypothesisStatus.REJECTED)},
        llm_calls=int(sum(v for k, v in metrics.items() if k.endswith(".calls"))),
        tokens=int(sum(v for k, v in metrics.items() if k.endswith("_tokens"))),
        cost_usd=round(sum(costs), 6) if costs else None,
        issues=issue_scores, problems=problem_scores,
    )  # fmt: skip


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
