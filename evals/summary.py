"""Pooled scores of random draws and negative controls (pydantic_evals' report-level evaluators).

Random draws are scored together, not one by one: a draw plants 1 to 3 problems, so a per-draw recall
is 0, 0.5 or 1 and says little. Each evaluator below takes every case's `Scores` and returns one figure:

- recall: the share of planted problems with power >= 0.8 (`evals.cases.STRONG`) that some reported
  issue matches (scorers.py's matching rule). Weaker problems are counted apart ("weak": how many were
  found), since no analyst can be expected to find them.
- precision: the share of the issues reported on random draws that match a planted problem.
- per family: both, per outcome family and per cause family. An unmatched issue is charged to the
  family of the planted problem its query's traces overlap most, or to "(none)" when it overlaps none.
- false issues per control: issues reported on a negative control, where nothing was planted, per control.
- violations: rule breaches over every case (must be 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from analyze_experiment.evals.cases import STRONG
from analyze_experiment.evals.scorers import ProblemScore, Scores

UNATTRIBUTED = "(none)"
Axis = Literal["outcome_family", "cause_family"]


class FamilyScore(BaseModel):
    family: str
    strong: int = 0
    strong_found: int = 0
    weak: int = 0
    weak_found: int = 0
    issues: int = 0
    matched_issues: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recall(self) -> float | None:
        return self.strong_found / self.strong if self.strong else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def precision(self) -> float | None:
        return self.matched_issues / self.issues if self.issues else None


class Summary(BaseModel):
    random_draws: int
    controls: int
    recall: float | None
    strong: int
    strong_found: int
    weak: int
    weak_found: int
    precision: float | None
    issues: int
    matched_issues: int
    evidence_precision: float | None
    false_issues_per_control: float | None
    control_issues: dict[str, int] = Field(default_factory=dict)
    violations: int = 0
    by_outcome: list[FamilyScore] = Field(default_factory=list)
    by_cause: list[FamilyScore] = Field(default_factory=list)


def random_cases(results: Sequence[Scores]) -> list[Scores]:
    return [r for r in results if r.source == "random"]


def control_cases(results: Sequence[Scores]) -> list[Scores]:
    return [r for r in results if r.source == "control"]


def _problems(results: Sequence[Scores]) -> list[ProblemScore]:
    return [p for r in random_cases(results) for p in r.problems]


def _strong(problem: ProblemScore) -> bool:
    return (problem.power or 0.0) >= STRONG


def pooled_recall(results: Sequence[Scores]) -> float | None:
    strong = [p for p in _problems(results) if _strong(p)]
    return sum(1 for p in strong if p.found) / len(strong) if strong else None


def weak_found(results: Sequence[Scores]) -> tuple[int, int]:
    """(found, planted) of the problems with power below 0.8."""
    weak = [p for p in _problems(results) if not _strong(p)]
    return sum(1 for p in weak if p.found), len(weak)


def pooled_precision(results: Sequence[Scores]) -> float | None:
    issues = [i for r in random_cases(results) for i in r.issues]
    return sum(1 for i in issues if i.matched) / len(issues) if issues else None


def pooled_evidence_precision(results: Sequence[Scores]) -> float | None:
    issues = [i for r in random_cases(results) for i in r.issues]
    total = sum(i.evidence for i in issues)
    return sum(i.evidence_in_problem for i in issues) / total if total else None


def false_issues_per_control(results: Sequence[Scores]) -> float | None:
    controls = control_cases(results)
    return sum(len(r.issues) for r in controls) / len(controls) if controls else None


def violations(results: Sequence[Scores]) -> int:
    return sum(len(r.violations) for r in results)


def per_family(results: Sequence[Scores], axis: Axis) -> list[FamilyScore]:
    rows: dict[str, FamilyScore] = {}

    def row(family: str | None) -> FamilyScore:
        name = family or UNATTRIBUTED
        return rows.setdefault(name, FamilyScore(family=name))

    for result in random_cases(results):
        by_kind = {p.kind: p for p in result.problems}
        for p in result.problems:
            entry = row(getattr(p, axis))
            if _strong(p):
                entry.strong += 1
                entry.strong_found += int(p.found)
            else:
                entry.weak += 1
                entry.weak_found += int(p.found)
        for issue in result.issues:
            owner = by_kind.get(issue.nearest) if issue.nearest else None
            entry = row(getattr(owner, axis) if owner else None)
            entry.issues += 1
            entry.matched_issues += int(issue.matched is not None)
    return sorted(rows.values(), key=lambda r: (r.family == UNATTRIBUTED, r.family))


def summarize(results: Sequence[Scores]) -> Summary:
    strong = [p for p in _problems(results) if _strong(p)]
    found, weak = weak_found(results)
    issues = [i for r in random_cases(results) for i in r.issues]
    return Summary(
        random_draws=len(random_cases(results)),
        controls=len(control_cases(results)),
        recall=pooled_recall(results),
        strong=len(strong),
        strong_found=sum(1 for p in strong if p.found),
        weak=weak,
        weak_found=found,
        precision=pooled_precision(results),
        issues=len(issues),
        matched_issues=sum(1 for i in issues if i.matched),
        evidence_precision=pooled_evidence_precision(results),
        false_issues_per_control=false_issues_per_control(results),
        control_issues={r.case: len(r.issues) for r in control_cases(results)},
        violations=violations(results),
        by_outcome=per_family(results, "outcome_family"),
        by_cause=per_family(results, "cause_family"),
    )
