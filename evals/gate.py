"""The quality gate CI holds the offline analyst to.

- scenarios: each committed scenario, held-out draw of one, and your own labelled experiment must
  reach THRESHOLDS on its own;
- random draws: pooled over all of them, recall of the problems with power >= 0.8 and precision must
  reach POOLED (see evals/summary.py);
- controls: on average at most MAX_FALSE_PER_CONTROL issues per negative control (CI runs 20 of
  them: with 5, one chance slice in one control is already 0.2 per control);
- rules: no invariant violation and an exact census in any case.

Each failure names its part, so a red gate says which of them failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyze_experiment.evals.scorers import Scores
from analyze_experiment.evals.summary import false_issues_per_control, pooled_precision, pooled_recall, random_cases

THRESHOLDS = {"issue_recall": 0.8, "issue_precision": 0.8, "evidence_precision": 0.9}
POOLED = {"recall": 0.9, "precision": 0.9}
MAX_FALSE_PER_CONTROL = 0.1
PER_CASE = {None, "recording", "held_out", "experiment"}  # sources held to THRESHOLDS case by case


def failures(results: Sequence[Scores]) -> list[str]:
    problems = []
    for result in results:
        if result.source in PER_CASE:
            for name, floor in THRESHOLDS.items():
                value = getattr(result, name)
                if value is not None and value < floor:
                    problems.append(f"scenarios: {result.case}: {name} {value:.2f} < {floor}")
        if result.violations:
            problems.append(
                f"rules: {result.case}: {len(result.violations)} invariant violation(s): {result.violations[0]}"
            )
        if result.census_exact is False:
            problems.append(f"rules: {result.case}: the census does not match the ground truth")
    if random_cases(results):
        for name, value in (("recall", pooled_recall(results)), ("precision", pooled_precision(results))):
            if value is not None and value < POOLED[name]:
                problems.append(f"random draws: pooled {name} {value:.2f} < {POOLED[name]}")
    false = false_issues_per_control(results)
    if false is not None and false > MAX_FALSE_PER_CONTROL:
        problems.append(f"controls: {false:.2f} false issues per negative control > {MAX_FALSE_PER_CONTROL}")
    return problems
