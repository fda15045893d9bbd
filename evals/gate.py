"""The quality gate CI holds the offline analyst to, per case."""

from __future__ import annotations

from evals.scorers import Scores

THRESHOLDS = {"issue_recall": 0.8, "issue_precision": 0.8, "evidence_precision": 0.9}


def failures(results: list[Scores]) -> list[str]:
    problems = []
    for result in results:
        for name, floor in THRESHOLDS.items():
            value = getattr(result, name)
            if value is not None and value < floor:
                problems.append(f"{result.case}: {name} {value:.2f} < {floor}")
        if result.violations:
            problems.append(f"{result.case}: {len(result.violations)} invariant violation(s): {result.violations[0]}")
        if result.census_exact is False:
            problems.append(f"{result.case}: the census does not match the ground truth")
    return problems
