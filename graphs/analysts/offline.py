"""The embedded analyst: no model, every judgement made from SQL over the traces and traces read.

Its hypotheses are the discovery engine's findings (`graphs.analysts.candidates`). It tests each by
re-running its query, counting the segment against the rest again and recomputing the test, and
reading traces; it sizes issues by the weighted share of traffic they touch. It knows nothing about
where the traces came from.
"""

from __future__ import annotations

from typing import Any

from analyze_experiment.agent.core.discovery.catalog import WEIGHTS
from analyze_experiment.agent.core.discovery.findings import LEVELS
from analyze_experiment.agent.core.discovery.profile import ERROR_SIGNATURE, SPAN_FAILED
from analyze_experiment.agent.core.discovery.search import Params
from analyze_experiment.agent.core.discovery.stats import Tables, p_values, per_call_p, risk_ratio
from analyze_experiment.agent.core.insights.models import (
    Analysis,
    Category,
    Census,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    SegmentStatistics,
    Severity,
    SqlQuery,
)
from analyze_experiment.agent.core.report import ReportFacts
from analyze_experiment.agent.core.traces.engine import QueryResult
from analyze_experiment.agent.core.traces.views import TraceView, excerpt
from analyze_experiment.graphs.analysts.base import HypothesisDraft, IssueDraft, Verdict
from analyze_experiment.graphs.analysts.candidates import candidates, describe_test
from analyze_experiment.graphs.analysts.wording import RECOMMENDATION, issue_title, signal_of, subject
from analyze_experiment.tools.budget import BudgetExhausted
from analyze_experiment.tools.protocols import AnalysisTools

READS_PER_TEST = 3
_ERRORS = f"array_join(array_sort(transform(filter(spans, s -> {SPAN_FAILED}), s -> {ERROR_SIGNATURE})), ' | ')"
# How typical of a selection a trace is, the most typical read first (see _typical_first).
_COMMONEST = f"count(*) OVER (PARTITION BY {_ERRORS})"
# a slow span's planted slowdown is far over its line, the background's slow calls just over it: the
# slowest traces of the slice are the likeliest to show the slice's own problem
TYPICAL = {"trace_failed": _COMMONEST, "span_failed": _COMMONEST}  # else the outcome's own magnitude, if any
MIN_TRACES = 3  # a hypothesis without the engine's figures needs this many selected traces
SAME_TRACES = 0.8  # two validated hypotheses over (nearly) the same traces are one issue
PERSON_WEIGHT = 0.7  # a person's hypothesis is weighed like a quality outcome
MIN_RATIO = Params().min_ratio


def contrast_sql(affected_sql: str) -> str:
    """Affected traces against the rest, so every number in an issue comes with its denominator."""
    return (
        "SELECT CASE WHEN trace_id IN (SELECT trace_id FROM (" + affected_sql + ") affected) THEN 'affected' "
        "ELSE 'rest' END AS grp, count(*) AS traces, count_if(state = 'ERROR') AS errors, "
        "percentile(execution_duration_ms, 0.5) AS p50_ms, count_if(exists(assessments, a -> "
        "a.feedback.value = 'false' OR lower(a.feedback.value) IN ('\"no\"', '\"fail\"', '\"failed\"'))) "
        "AS negative_assessments FROM traces GROUP BY 1 ORDER BY 1"
    )


def segment_sql(stats: SegmentStatistics) -> str:
    """The segment against the rest of the outcome's population: the engine's test, counted again (with
    the span's calls and bad calls where the outcome is one bad call among several)."""
    population = f" WHERE {stats.population_sql}" if stats.population_sql else ""
    calls = ""
    if stats.calls_sql and stats.bad_calls_sql:
        calls = f", sum({stats.calls_sql}) AS calls, sum({stats.bad_calls_sql}) AS bad_calls"
    return (
        f"SELECT CASE WHEN ({stats.segment_sql}) THEN 'segment' ELSE 'rest' END AS grp, count(*) AS traces, "
        f"count_if({stats.outcome_sql}) AS with_outcome{calls} FROM traces{population} GROUP BY 1 ORDER BY 1"
    )


ENTRY_POINTS_SQL = """
SELECT tags['mlflow.traceName'] AS name, count(*) AS traces
FROM traces
GROUP BY 1
ORDER BY traces DESC, name
LIMIT 3
"""
STEPS_SQL = """
SELECT s.name AS name, max(s.attributes['mlflow.spanType']) AS type, count(DISTINCT trace_id) AS traces,
       (SELECT count(*) FROM traces) AS total
FROM traces LATERAL VIEW explode(spans) t AS s
WHERE s.parent_id IS NOT NULL
GROUP BY s.name
ORDER BY traces DESC, name
LIMIT 12
"""


class OfflineAnalyst:
    name = "offline"

    # -- describe -----------------------------------------------------------------------------------

    def describe(self, tools: AnalysisTools, samples: list[TraceView]) -> str:
        entry = tools.execute_sql(ENTRY_POINTS_SQL, record=False).records()
        steps = tools.execute_sql(STEPS_SQL, record=False).records()
        lines = ["Entry points: " + ", ".join(f"{_name(r['name'])} ({r['traces']} traces)" for r in entry) + "."]
        by_type: dict[str, list[str]] = {}
        for row in steps:
            kind = str(row["type"] or "UNKNOWN").strip('"')
            by_type.setdefault(kind, []).append(f"{row['name']} ({row['traces'] / max(row['total'], 1):.0%} of traces)")
        for kind, names in sorted(by_type.items()):
            lines.append(f"{kind.title()} steps: " + ", ".join(names) + ".")
        requests = [excerpt(s.request, 100) for s in samples if s.request][:4]
        if requests:
            lines.append("Sample requests: " + "; ".join(f'"{r}"' for r in requests) + ".")
        states = {s.state for s in samples}
        lines.append(
            f"Read {len(samples)} traces ({', '.join(sorted(states))}); descriptions from trace names, "
            "span types and sample requests, counts from SQL over the traces table."
        )
        return "\n".join(lines)[:5000]

    # -- hypothesize --------------------------------------------------------------------------------

    def hypothesize(
        self, tools: AnalysisTools, census: Census, analysis: Analysis, limit: int
    ) -> list[HypothesisDraft]:
        return candidates(tools, census, analysis, limit)

    # -- test ---------------------------------------------------------------------------------------

    def test(self, tools: AnalysisTools, hypothesis: Hypothesis) -> Verdict:
        selection = hypothesis.selection
        if selection is None:
            return Verdict(
                status=None,
                reason="no SQL to test with offline; add a query selecting the traces "
                "concerned, or run with an LLM (--model)",
            )
        evidence: list[Evidence] = []
        try:
            if hypothesis.statistics is not None:
                return _test_segment(tools, selection, hypothesis.statistics, evidence)
            return _test_selection(tools, selection, evidence)
        except BudgetExhausted as spent:
            return Verdict(status=None, evidence=evidence, reason=f"stopped: {spent}")

    # -- issues -------------------------------------------------------------------------------------

    def draft_issue(self, tools: AnalysisTools, hypothesis: Hypothesis) -> IssueDraft | None:
        query = hypothesis.selection
        if hypothesis.category is Category.STRENGTH or query is None:
            return None
        affected = set(_selected(tools, query.query))
        for issue in tools.list_issues():
            source = tools.get_hypothesis(issue.hypothesis_id)
            if source.selection:
                other = set(_selected(tools, source.selection.query))
                if len(affected & other) >= SAME_TRACES * len(affected | other):
                    return None  # the same traces: already reported as that issue
        contrast = _contrast(tools.execute_sql(contrast_sql(query.query), record=False))
        total = sum(int(row["traces"]) for row in contrast.values())
        share = len(affected) / max(total, 1)
        weight = (
            WEIGHTS.get(hypothesis.statistics.outcome_family, PERSON_WEIGHT) if hypothesis.statistics else PERSON_WEIGHT
        )
        severity = severity_of(weight * share)
        supporting = [e for e in hypothesis.evidence if e.supports]
        measured = f"Measured: {len(affected)} of {total} traces ({share:.1%}) ({query.id}). {_numbers(contrast)}."
        if hypothesis.statistics is not None:
            measured += f" Segment test: {_segment_numbers(hypothesis.statistics)}."
        description = (
            f"{hypothesis.statement}. {measured} Root cause, from the traces read: "
            f"{supporting[0].rationale if supporting else 'n/a'}. Severity {severity.value}: "
            f"{share:.1%} of traffic affected, weighted {weight:g} for what happened to it "
            f"({_family(hypothesis)})."
        )
        return IssueDraft(
            title=issue_title(signal_of(hypothesis), hypothesis),
            description=description[:10000],
            severity=severity,
            evidence=supporting,
            category=hypothesis.category,
        )

    def recommend(self, facts: ReportFacts) -> list[str]:
        by_hypothesis = {h.id: h for h in facts.hypotheses}
        lines = []
        for issue in facts.reported_issues:
            source = by_hypothesis.get(issue.hypothesis_id)
            signal = signal_of(source) if source else "person"
            lines.append(f"{issue.id} ({issue.severity.value}): {RECOMMENDATION.get(signal, RECOMMENDATION['person'])}")
        return lines


def severity_of(weighted_share: float) -> Severity:
    """One rule for every issue (docs/architecture.md, "Severity"): the share of traffic affected, times
    the weight of what happened to it (a failed request 1.0, a slow span 0.15)."""
    return next((level for floor, level in LEVELS if weighted_share >= floor), Severity.LOW)


def _family(hypothesis: Hypothesis) -> str:
    return hypothesis.statistics.outcome_family if hypothesis.statistics else "a person's hypothesis"


def _test_segment(
    tools: AnalysisTools, plan_sql: SqlQuery, stats: SegmentStatistics, evidence: list[Evidence]
) -> Verdict:
    # sorted: the engine returns rows in no set order, and the traces read must not change between runs
    affected = sorted(tools.execute_sql(plan_sql.query, query_id=plan_sql.id).trace_ids(first_column_fallback=True))
    counts = _contrast(tools.execute_sql(segment_sql(stats), query_id="Q2"))
    inside, rest = counts.get("segment", {}), counts.get("rest", {})
    table = Tables(
        k=_floats(inside, "with_outcome"),
        n=_floats(inside, "traces"),
        k_rest=_floats(rest, "with_outcome"),
        n_rest=_floats(rest, "traces"),
    )
    p = float(p_values(table, stats.two_sided)[0][0])
    ratio, low, high = (float(v[0]) for v in risk_ratio(table))
    k, n, k_rest, n_rest = (int(v[0]) for v in (table.k, table.n, table.k_rest, table.n_rest))
    numbers = (
        f"Q2 counts {k}/{n} in the segment against {k_rest}/{n_rest} elsewhere: risk ratio {ratio:.2f} "
        f"(95% CI {low:.2f} to {high:.2f}), p = {p:.2g}"
    )
    if "calls" in inside and "calls" in rest:
        bad, calls, bad_rest, calls_rest = (
            _floats(row, key) for row in (inside, rest) for key in ("bad_calls", "calls")
        )
        per_call = float(per_call_p(bad, calls, bad_rest, calls_rest, stats.two_sided, table.lower)[0])
        numbers += (
            f"; bad calls {int(bad[0])}/{int(calls[0])} against {int(bad_rest[0])}/{int(calls_rest[0])}, "
            f"p = {per_call:.2g}"
        )
        p = max(p, per_call)
    numbers += f"; against its cutoff {stats.p_cutoff:.2g} ({stats.tests_in_run} tests, FDR {stats.fdr:g})"
    floor = max(MIN_RATIO, stats.explained_ratio)
    holds = p <= stats.p_cutoff and (high < 1 / MIN_RATIO if stats.strength else low > floor)
    if not holds:
        return _refute(tools, stats, evidence, affected, numbers)
    for trace_id in _typical_first(tools, stats, plan_sql.query, _seen_first(tools, stats, affected)):
        read = tools.get_trace(trace_id)
        evidence.append(
            Evidence(
                trace_id=trace_id,
                supports=True,
                rationale=f"selected by {plan_sql.id} ({stats.outcome}); {_gist(read, subject(stats.outcome))}",
            )
        )
    if not evidence:
        return Verdict(status=None, reason=f"{numbers}, but {plan_sql.id} selects no trace to read")
    return Verdict(status=HypothesisStatus.VALIDATED, evidence=evidence, reason=numbers)


def _typical_first(tools: AnalysisTools, stats: SegmentStatistics, selection: str, affected: list[str]) -> list[str]:
    """The traces to read: a slice's outcome traces include its share of the background's (requests
    that fail elsewhere for other reasons fail here too), so of failures, those with the commonest error
    among them, the slice's own most likely; of a slow slice, the furthest past the line (its slowest
    calls of the span, not its slowest traces, which a failure's retries may have made slow); otherwise
    spread over it."""
    typical = TYPICAL.get(stats.outcome_family) or stats.magnitude_sql
    if len(affected) <= READS_PER_TEST or typical is None:
        return _spread(affected, READS_PER_TEST)
    ranked = tools.execute_sql(
        f"SELECT trace_id FROM (SELECT trace_id, {typical} AS typical "
        f"FROM traces WHERE trace_id IN ({selection})) ORDER BY typical DESC, trace_id "
        f"LIMIT {READS_PER_TEST}",
        query_id="Q3",
    ).trace_ids(first_column_fallback=True)
    shown = set(affected)
    return [t for t in ranked if t in shown] or _spread(affected, READS_PER_TEST)


def _seen_first(tools: AnalysisTools, stats: SegmentStatistics, affected: list[str]) -> list[str]:
    """The affected traces where the outcome was seen. A selection may presume traces affected that
    nobody judged (a sampled assessment, see discovery.findings); a claim is shown with ones judged."""
    population = f" AND ({stats.population_sql})" if stats.population_sql else ""
    seen = set(
        _selected(
            tools, f"SELECT trace_id FROM traces WHERE ({stats.segment_sql}) AND ({stats.outcome_sql}){population}"
        )
    )
    return [t for t in affected if t in seen] or affected


def _refute(
    tools: AnalysisTools, stats: SegmentStatistics, evidence: list[Evidence], affected: list[str], numbers: str
) -> Verdict:
    """Not significant: read a segment trace without the outcome (or, failing that, one of the few with it)."""
    population = f" AND ({stats.population_sql})" if stats.population_sql else ""
    without = _selected(
        tools,
        f"SELECT trace_id FROM traces WHERE ({stats.segment_sql}) AND NOT ({stats.outcome_sql})"
        f"{population} ORDER BY request_time DESC LIMIT 1",
    )
    for trace_id in without or affected[:1]:
        read = tools.get_trace(trace_id)
        evidence.append(
            Evidence(
                trace_id=trace_id,
                supports=False,
                rationale=f"{numbers}: not significant. This segment trace: {_gist(read, subject(stats.outcome))}",
            )
        )
    if not evidence:
        return Verdict(status=None, reason=f"{numbers}; no trace of the segment to read")
    return Verdict(status=HypothesisStatus.REJECTED, evidence=evidence, reason=f"the pattern does not hold: {numbers}")


def _test_selection(tools: AnalysisTools, plan_sql: SqlQuery, evidence: list[Evidence]) -> Verdict:
    """A hypothesis without the engine's figures (a person's, a model's): it holds when its query
    selects at least MIN_TRACES traces and the ones read agree."""
    affected = tools.execute_sql(plan_sql.query, query_id=plan_sql.id).trace_ids(first_column_fallback=True)
    contrast = _contrast(tools.execute_sql(contrast_sql(plan_sql.query)))
    total = sum(int(row["traces"]) for row in contrast.values())
    numbers = f"{len(affected)} of {total} traces selected; {_numbers(contrast)}"
    if len(affected) < MIN_TRACES:
        outsider = _selected(
            tools,
            f"SELECT trace_id FROM traces WHERE trace_id NOT IN (SELECT trace_id FROM "
            f"({plan_sql.query}) a) ORDER BY request_time DESC LIMIT 1",
        )
        for trace_id in outsider:
            read = tools.get_trace(trace_id)
            evidence.append(
                Evidence(
                    trace_id=trace_id,
                    supports=False,
                    rationale=f"{plan_sql.id} selects {len(affected)} of {total} traces, fewer than "
                    f"{MIN_TRACES}: no pattern. This trace ({_gist(read)}) is like the rest.",
                )
            )
        for trace_id in affected:
            evidence.append(
                Evidence(trace_id=trace_id, supports=True, rationale=f"one of the few traces {plan_sql.id} selects")
            )
        reason = f"the pattern does not hold: {plan_sql.id} selects {len(affected)} of {total} traces, fewer than {MIN_TRACES}"
        return Verdict(status=HypothesisStatus.REJECTED, evidence=evidence, reason=reason)
    for trace_id in _spread(affected, READS_PER_TEST):
        read = tools.get_trace(trace_id)
        evidence.append(
            Evidence(trace_id=trace_id, supports=True, rationale=f"selected by {plan_sql.id}; {_gist(read)}")
        )
    return Verdict(status=HypothesisStatus.VALIDATED, evidence=evidence, reason=numbers)


def _floats(row: dict[str, Any], key: str) -> Any:
    import numpy as np

    return np.array([float(row.get(key) or 0)], dtype=np.float64)


def _segment_numbers(s: SegmentStatistics) -> str:
    return (
        f"{s.k}/{s.n} where {s.segment} against {s.k_rest}/{s.n_rest} elsewhere, risk ratio {s.risk_ratio:.2f} "
        f"(95% CI {s.ci_low:.2f} to {min(s.ci_high, 1e6):.2f}); {describe_test(s)}"
    )


def _numbers(contrast: dict[str, dict[str, Any]]) -> str:
    a, r = contrast.get("affected", {}), contrast.get("rest", {})

    def part(row: dict[str, Any]) -> str:
        n = int(row.get("traces") or 0)
        return (
            f"{int(row.get('errors') or 0)}/{n} failed, median {_ms(row.get('p50_ms'))}, "
            f"{int(row.get('negative_assessments') or 0)}/{n} with a negative assessment"
        )

    return f"affected: {part(a) if a else 'none'}; rest: {part(r) if r else 'none'}"


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.0f} ms"


def _contrast(result: QueryResult) -> dict[str, dict[str, Any]]:
    return {str(row["grp"]): row for row in result.records()}


def _selected(tools: AnalysisTools, query: str) -> list[str]:
    """The traces a query selects, run outside any lineage (counting, comparing)."""
    return tools.execute_sql(query, record=False).trace_ids(first_column_fallback=True)


def _spread(ids: list[str], count: int) -> list[str]:
    if len(ids) <= count:
        return ids
    step = (len(ids) - 1) / (count - 1)
    return [ids[round(i * step)] for i in range(count)]


def _gist(trace: TraceView, about: str = "") -> str:
    """What a reader of this trace sees first: its outcome, the span the hypothesis names, the deepest
    failing span, the exchange."""
    parts = [f"{trace.state}, {trace.execution_duration_ms} ms"]
    named = next((s for s in trace.spans if s.parent_id and s.name == about), None)
    if named is not None:
        parts.append(f"span {named.name} {named.status} in {named.duration_ms or 0:.0f} ms")
    failed = sorted((s for s in trace.spans if s.status == "ERROR"), key=lambda s: -s.depth)
    if failed:
        message = failed[0].errors[0] if failed[0].errors else failed[0].status_message or ""
        parts.append(f"span {failed[0].name} failed: {excerpt(message, 120)}")
    slowest = max((s for s in trace.spans if s.parent_id), key=lambda s: s.duration_ms or 0, default=None)
    if slowest is not None and slowest.duration_ms:
        parts.append(f"slowest span {slowest.name} {slowest.duration_ms:.0f} ms")
    parts.append(f"request '{excerpt(trace.request, 90)}'")
    parts.append(f"response '{excerpt(trace.response, 140)}'")
    return "; ".join(parts)


def _name(value: Any) -> str:
    return str(value).strip('"') if value is not None else "(unnamed)"
