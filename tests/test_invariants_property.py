"""Random sequences of operations against the real library: no invariant is ever broken.

Every operation either succeeds or is refused with a `UserError`; a refused operation must leave the
stored documents exactly as they were, and after every step the stored state must satisfy the rules.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.agent.core.insights import invariants
from analyze_experiment.agent.core.insights.models import (
    Actor,
    AnalysisStatus,
    Census,
    Evidence,
    HypothesisStatus,
    IssueStatus,
    Severity,
)
from tests.conftest import Store

FAKE_TRACE = "tr-0000000000000000000000000000dead"
# Mostly real traces, sometimes the fake one; mostly one entry, sometimes none.
_PICK = st.tuples(st.sampled_from([0, 1, 2, 3, 4, 0, 1, 5]), st.booleans())
PICKS = st.lists(_PICK, min_size=1, max_size=2) | st.lists(_PICK, max_size=2)
TITLES = ["Order lookup tool times out often", "Too short", "Refund answers apologise and hedge too much"]


def snapshot(machine: Any) -> dict[str, Any]:
    """Everything the insights library stored for the run (params index every document version)."""
    params = machine.client.get_run(machine.run_id).data.params
    return {k: v for k, v in params.items() if k.startswith("insights.")}


class InsightsMachine(RuleBasedStateMachine):
    store: Store
    outcomes: ClassVar[Counter[str]] = Counter()

    @initialize()
    def start(self) -> None:
        from analyze_experiment.agent.core.insights.service import Insights

        self.client = self.store.client()
        self.insights = Insights(self.client)
        self.run_id = self.insights.create_analysis(self.store.experiment_id, "property").run_id
        self.traces = [*self.store.traces.trace_ids()[:5], FAKE_TRACE]  # type: ignore[attr-defined]
        # Start where the interesting rules apply; the census-first refusal is covered by the CLI tests.
        self.census()
        for n in (1, 2):
            self.insights.create_hypothesis(self.run_id, statement=f"claim {n}", rationale="r", testing_plan="p")

    def attempt(self, operation: Any) -> None:
        before = snapshot(self)
        try:
            result = operation()
        except UserError as refused:
            self.outcomes[f"refused {type(refused).__name__}"] += 1
            assert snapshot(self) == before, "a refused operation changed stored state"
        else:
            self.outcomes[f"stored {type(result).__name__} {getattr(result, 'status', '')}".strip()] += 1

    def evidence(self, picks: list[tuple[int, bool]]) -> list[Evidence]:
        return [Evidence(trace_id=self.traces[i], rationale="observed", supports=s) for i, s in picks]

    def census(self) -> None:
        census = Census(trace_count=10, ok_count=8, error_count=2, error_rate=0.2)
        self.attempt(lambda: self.insights.save_census(self.run_id, census))

    @rule(n=st.integers(2, 3), picks=PICKS)
    def create_hypothesis(self, n: int, picks: list[tuple[int, bool]]) -> None:
        self.attempt(
            lambda: self.insights.create_hypothesis(
                self.run_id, statement=f"claim {n}", rationale="r", testing_plan="p", evidence=self.evidence(picks)
            )
        )

    @rule(
        n=st.integers(1, 2),
        status=st.sampled_from([None, *HypothesisStatus, HypothesisStatus.VALIDATED]),
        picks=PICKS,
        actor=st.sampled_from(Actor),
        reopen=st.booleans(),
        reason=st.none() | st.just("because"),
    )
    def update_hypothesis(
        self,
        n: int,
        status: HypothesisStatus | None,
        picks: list[tuple[int, bool]],
        actor: Actor,
        reopen: bool,
        reason: str | None,
    ) -> None:
        self.attempt(
            lambda: self.insights.update_hypothesis(
                self.run_id,
                f"H{n}",
                status=status,
                evidence=self.evidence(picks),
                actor=actor,
                reopen=reopen,
                reason=reason,
            )
        )

    @rule(
        n=st.integers(1, 2),
        title=st.sampled_from(TITLES),
        severity=st.sampled_from(Severity),
        picks=PICKS,
        cite_hypothesis=st.booleans(),
    )
    def create_issue(
        self, n: int, title: str, severity: Severity, picks: list[tuple[int, bool]], cite_hypothesis: bool
    ) -> None:
        """Either promote a validated hypothesis with its own evidence, as the workflow does, or try
        arbitrary combinations."""
        hypothesis_id, evidence = f"H{n}", self.evidence(picks)
        if cite_hypothesis:
            validated = self.insights.list_hypotheses(self.run_id, HypothesisStatus.VALIDATED)
            if validated:
                hypothesis_id, evidence = validated[0].id, validated[0].evidence
        self.attempt(
            lambda: self.insights.create_issue(
                self.run_id,
                hypothesis_id=hypothesis_id,
                title=title,
                description="d",
                severity=severity,
                evidence=evidence,
            )
        )

    # Two rules that walk the workflow's happy path, so the random ones get to probe its later states.
    @rule(n=st.integers(1, 3), trace=st.integers(0, 4))
    def validate(self, n: int, trace: int) -> None:
        self.attempt(
            lambda: self.insights.update_hypothesis(
                self.run_id, f"H{n}", status=HypothesisStatus.VALIDATED, evidence=self.evidence([(trace, True)])
            )
        )

    @rule()
    def promote(self) -> None:
        validated = self.insights.list_hypotheses(self.run_id, HypothesisStatus.VALIDATED)
        if validated:
            self.attempt(
                lambda: self.insights.create_issue(
                    self.run_id,
                    hypothesis_id=validated[-1].id,
                    title=TITLES[0],
                    description="d",
                    severity=Severity.HIGH,
                    evidence=validated[-1].evidence,
                )
            )

    @rule(n=st.integers(1, 2), status=st.sampled_from(IssueStatus))
    def update_issue(self, n: int, status: IssueStatus) -> None:
        self.attempt(lambda: self.insights.update_issue(self.run_id, f"I{n}", status=status))

    @rule(status=st.sampled_from([*[AnalysisStatus.ACTIVE] * 4, AnalysisStatus.COMPLETED, AnalysisStatus.ARCHIVED]))
    def update_analysis(self, status: AnalysisStatus) -> None:
        self.attempt(lambda: self.insights.update_analysis(self.run_id, status=status))

    @invariant()
    def rules_hold(self) -> None:
        if not hasattr(self, "run_id"):
            return
        hypotheses = self.insights.list_hypotheses(self.run_id)
        issues = self.insights.list_issues(self.run_id)
        cited = {e.trace_id for h in hypotheses for e in h.evidence} | {e.trace_id for i in issues for e in i.evidence}
        linked = {
            t.info.trace_id
            for t in self.client.search_traces(
                locations=[self.store.experiment_id], run_id=self.run_id, include_spans=False
            )
        }
        assert cited <= linked, "evidence that is not linked to the run"
        assert FAKE_TRACE not in cited
        if hypotheses:
            self.insights.get_census(self.run_id)  # raises if hypotheses came before the census
        for h in hypotheses:
            if h.status is HypothesisStatus.VALIDATED:
                assert any(e.supports for e in h.evidence)
            if h.status is HypothesisStatus.REJECTED:
                # refuting evidence, or a person's judgement with a reason (rejected at an approval)
                by_person = h.history[-1].actor is Actor.PERSON and h.history[-1].reason.strip()
                assert by_person or any(not e.supports for e in h.evidence)
            assert (h.history[-1].to_status if h.history else "TESTING") == h.status.value
        by_id = {h.id: h for h in hypotheses}
        for i in issues:
            invariants.require_title_length(i.title)
            assert i.evidence and i.hypothesis_id in by_id
            if i.status in {IssueStatus.OPEN, IssueStatus.IN_PROGRESS}:
                assert by_id[i.hypothesis_id].status is HypothesisStatus.VALIDATED


@pytest.mark.slow
def test_random_operation_sequences_never_break_an_invariant(store: Store) -> None:
    InsightsMachine.store = store
    InsightsMachine.TestCase.settings = settings(
        max_examples=20,
        stateful_step_count=20,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    InsightsMachine.TestCase().runTest()
    seen = InsightsMachine.outcomes
    for key, count in sorted(seen.items()):
        print(count, key)
    # The sequences must reach the interesting states, or the test proves little.
    assert seen["stored Issue OPEN"] > 0 and seen["stored Hypothesis VALIDATED"] > 0
    assert seen["refused InvariantViolation"] > 0
