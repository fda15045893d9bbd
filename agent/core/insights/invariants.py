"""The analysis rules of the workflow, as checks that raise `InvariantViolation`.

They are pure functions over documents, called by `analyze_experiment.agent.core.insights.service` before every write, so a
person, a script and an LLM all meet the same rules and none can argue past them.
"""

from __future__ import annotations

from collections.abc import Iterable

from analyze_experiment.agent.core.errors import InvariantViolation
from analyze_experiment.agent.core.insights.models import (
    Actor,
    Analysis,
    AnalysisStatus,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Issue,
    IssueStatus,
    SqlQuery,
)

TITLE_WORDS = (5, 8)
_OPEN_ISSUE = {IssueStatus.OPEN, IssueStatus.IN_PROGRESS}


def require_writable(analysis: Analysis) -> None:
    if analysis.status is not AnalysisStatus.ACTIVE:
        raise InvariantViolation(
            f"analysis {analysis.run_id} is {analysis.status.value} and read-only; reopen it with "
            "`insights update-analysis --run-id ... --status ACTIVE` first"
        )


def require_census(has_census: bool, run_id: str) -> None:
    if not has_census:
        raise InvariantViolation(
            f"analysis {run_id} has no baseline census yet; run `insights create-baseline-census "
            f"--run-id {run_id}` before creating hypotheses"
        )


def require_workable(hypothesis: Hypothesis, actor: Actor, reopening: bool) -> None:
    """A REJECTED hypothesis stays closed unless a person reopens it."""
    if hypothesis.status is not HypothesisStatus.REJECTED:
        return
    if reopening and actor is Actor.PERSON:
        return
    raise InvariantViolation(
        f"hypothesis {hypothesis.id} is REJECTED and is not worked on again; a person can reopen it "
        f"with `insights update-hypothesis --hypothesis-id {hypothesis.id} --status TESTING --reopen "
        "--reason ...`"
    )


def require_status_evidence(
    hypothesis: Hypothesis,
    new_status: HypothesisStatus,
    new_evidence: list[Evidence],
    actor: Actor = Actor.AGENT,
    reason: str | None = None,
) -> None:
    """A status change must bring its own evidence, and the evidence must point the right way.

    One exception, the workflow's "user control" rule: a person may reject a hypothesis at an approval
    with a reason alone; their judgement is the evidence, and a rejected hypothesis is never tested.
    """
    if new_status is hypothesis.status:
        return
    if actor is Actor.PERSON and new_status is HypothesisStatus.REJECTED and reason and reason.strip():
        return
    if not new_evidence:
        raise InvariantViolation(
            f"changing {hypothesis.id} to {new_status.value} needs evidence in the same update; pass "
            '--evidence \'{"trace_id": ..., "rationale": ..., "supports": true|false}\''
        )
    all_evidence = [*hypothesis.evidence, *new_evidence]
    if new_status is HypothesisStatus.VALIDATED and not any(e.supports for e in all_evidence):
        raise InvariantViolation(
            f'{hypothesis.id} cannot be VALIDATED without at least one supporting evidence entry ("supports": true)'
        )
    if new_status is HypothesisStatus.REJECTED and all(e.supports for e in all_evidence):
        raise InvariantViolation(
            f'{hypothesis.id} cannot be REJECTED without at least one refuting evidence entry ("supports": false)'
        )


def require_no_open_issues(hypothesis: Hypothesis, new_status: HypothesisStatus, issues: list[Issue]) -> None:
    """An issue must keep standing on a VALIDATED hypothesis while it is open."""
    if hypothesis.status is not HypothesisStatus.VALIDATED or new_status is HypothesisStatus.VALIDATED:
        return
    open_ids = [i.id for i in issues if i.hypothesis_id == hypothesis.id and i.status in _OPEN_ISSUE]
    if open_ids:
        raise InvariantViolation(
            f"{hypothesis.id} backs open issue(s) {', '.join(open_ids)}; resolve or reject them "
            "(`insights update-issue --status ...`) before changing its status"
        )


def require_validated_source(hypothesis: Hypothesis) -> None:
    if hypothesis.status is not HypothesisStatus.VALIDATED:
        raise InvariantViolation(
            f"issues come only from VALIDATED hypotheses; {hypothesis.id} is {hypothesis.status.value}"
        )


def require_title_length(title: str) -> None:
    words = len(title.split())
    low, high = TITLE_WORDS
    if not low <= words <= high:
        raise InvariantViolation(
            f"issue titles must be {low}-{high} words, specific and fix-oriented; '{title}' has {words}"
        )


def require_evidence(evidence: list[Evidence], what: str) -> None:
    if not evidence:
        raise InvariantViolation(f"{what} needs at least one evidence trace (--evidence)")


def require_all_present(missing: Iterable[str], problem: str, remedy: str) -> None:
    absent = sorted(missing)
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise InvariantViolation(f"{problem}: {shown}; {remedy}")


def require_query_for_statement(hypothesis: Hypothesis, statement: str | None, selection: SqlQuery | None) -> None:
    """An edited claim is tested by a query of its own, never by the one written for the old claim."""
    changed = statement is not None and statement.strip() != hypothesis.statement.strip()
    if changed and hypothesis.sql_queries and selection is None:
        raise InvariantViolation(
            f"the statement of {hypothesis.id} changed but no SQL came with it: {hypothesis.selection_id or 'Q1'} "
            "tested the old statement; give the new one its query (SELECT trace_id FROM traces WHERE ...)"
        )


def merge_evidence(existing: list[Evidence], new: list[Evidence]) -> list[Evidence]:
    """Evidence is keyed by (trace, direction): restating it updates the rationale, never duplicates."""
    merged = {(e.trace_id, e.supports): e for e in existing}
    for entry in new:
        merged[(entry.trace_id, entry.supports)] = entry
    return list(merged.values())


def merge_queries(existing: list[SqlQuery], new: list[SqlQuery]) -> list[SqlQuery]:
    """Query ids are citations in testing plans, so an id can never come to mean another query."""
    merged = {q.id: q for q in existing}
    for query in new:
        known = merged.get(query.id)
        if known is not None and known.query.strip() != query.query.strip():
            raise InvariantViolation(
                f"{query.id} is already recorded with a different query; give the new query a new id"
            )
        if known is None or query.result_summary:
            merged[query.id] = query
    return sorted(merged.values(), key=lambda q: int(q.id[1:]))


def require_reason(reason: str | None, what: str) -> None:
    if not reason or not reason.strip():
        raise InvariantViolation(f"{what} needs a --reason that says why")
