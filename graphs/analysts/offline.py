"""The embedded analyst: no model, every judgement made from SQL over the traces and traces read.

It asks the detectors and probes what the census suggests, tests each hypothesis by re-running its
query, contrasting affected traces with the rest and reading three of them, and sizes issues by the
share of traffic they touch. It knows nothing about where the traces came from.
"""

from __future__ import annotations

import re
from typing import Any

from agent.insights.models import Analysis, Category, Census, Evidence, Hypothesis, HypothesisStatus, Severity
from agent.report import ReportFacts
from agent.traces.engine import QueryResult
from agent.traces.views import TraceView, excerpt
from graphs.analysts.base import HypothesisDraft, IssueDraft, Verdict
from graphs.analysts.detectors import MIN_TRACES, Finding, detect
from graphs.analysts.probes import probes
from graphs.analysts.wording import CATEGORY, RECOMMENDATION, issue_title
from tools.budget import BudgetExhausted
from tools.toolbox import Toolbox

READS_PER_TEST = 3
SAME_TRACES = 0.8  # two validated hypotheses over (nearly) the same traces are one issue
_SIGNAL = re.compile(r"^Signal: ([a-z_]+)\.")


def signal_of(hypothesis: Hypothesis) -> str:
    match = _SIGNAL.match(hypothesis.rationale)
    return match[1] if match else "person"


def contrast_sql(affected_sql: str) -> str:
    """Affected traces against the rest, so every number in an issue comes with its denominator."""
    return ("SELECT CASE WHEN trace_id IN (SELECT trace_id FROM (" + affected_sql + ") affected) THEN 'affected' "
            "ELSE 'rest' END AS grp, count(*) AS traces, count_if(state = 'ERROR') AS errors, "
            "percentile(execution_duration_ms, 0.5) AS p50_ms, count_if(exists(assessments, a -> "
            "a.source.source_type = 'HUMAN' AND a.feedback.value = 'false')) AS negative_feedback "
            "FROM traces GROUP BY 1 ORDER BY 1")  # fmt: skip


class OfflineAnalyst:
    name = "offline"

    def __init__(self, max_per_signal: int = 3) -> None:
        self.max_per_signal = max_per_signal

    # -- describe -----------------------------------------------------------------------------------

    def describe(self, tools: Toolbox, samples: list[TraceView]) -> str:
        entry = tools.execute_sql(
            "SELECT tags['mlflow.traceName'] AS name, count(*) AS traces FROM traces GROUP BY 1 "
            "ORDER BY traces DESC, name LIMIT 3", record=False).records()  # fmt: skip
        steps = tools.execute_sql(
            "SELECT s.name AS name, max(s.attributes['mlflow.spanType']) AS type, count(DISTINCT trace_id) AS traces, "
            "(SELECT count(*) FROM traces) AS total FROM traces LATERAL VIEW explode(spans) t AS s "
            "WHERE s.parent_id IS NOT NULL GROUP BY s.name ORDER BY traces DESC, name LIMIT 12", record=False).records()  # fmt: skip
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
        lines.append(f"Read {len(samples)} traces ({', '.join(sorted(states))}); descriptions from trace names, "
                     "span types and sample requests, counts from SQL over the traces table.")  # fmt: skip
        return "\n".join(lines)[:5000]

    # -- hypothesize --------------------------------------------------------------------------------

    def hypothesize(self, tools: Toolbox, census: Census, analysis: Analysis, limit: int) -> list[HypothesisDraft]:
        findings = _ranked(detect(tools.sql_engine()), analysis.focus)
        drafts = [self._from_finding(f, census) for f in self._capped(findings)]
        problems = [d for d in drafts if d.category is not Category.STRENGTH]
        strengths = [d for d in drafts if d.category is Category.STRENGTH]
        questions = [HypothesisDraft(statement=p.statement, rationale=f"Signal: {p.signal}. {p.rationale}.",
                                     testing_plan=_plan(), sql=p.sql, category=p.category)
                     for p in probes(census)]  # fmt: skip
        # Strengths and open questions get a place even when problems are many.
        reserved = min(len(strengths), 2) + min(len(questions), 2)
        chosen = problems[: max(limit - reserved, 1)]
        rest = [*strengths, *questions, *problems[len(chosen) :]]
        return [*chosen, *rest][:limit]

    def _capped(self, findings: list[Finding]) -> list[Finding]:
        """At most a few findings per detector, so one noisy signal cannot crowd out the others."""
        seen: dict[str, int] = {}
        kept = []
        for finding in findings:
            seen[finding.kind] = seen.get(finding.kind, 0) + 1
            if seen[finding.kind] <= self.max_per_signal:
                kept.append(finding)
        return kept

    def _from_finding(self, finding: Finding, census: Census) -> HypothesisDraft:
        share = len(finding.affected) / max(finding.total, 1)
        rationale = (f"Signal: {finding.kind}. {finding.rationale}; {len(finding.affected)} of {finding.total} "
                     f"traces ({share:.1%}) match. Census baseline: {census.error_count} of {census.trace_count} "
                     f"traces failed (Q1), OK p95 latency {census.sections.get('latency_ok_ms', {}).get('p95')} ms (Q3).")  # fmt: skip
        if finding.also:
            rationale += " Also seen as: " + "; ".join(finding.also) + "."
        return HypothesisDraft(statement=finding.statement, rationale=rationale, testing_plan=_plan(),
                               sql=finding.affected_sql, category=CATEGORY.get(finding.kind, Category.QUALITY))  # fmt: skip

    # -- test ---------------------------------------------------------------------------------------

    def test(self, tools: Toolbox, hypothesis: Hypothesis) -> Verdict:
        if not hypothesis.sql_queries:
            return Verdict(status=None, reason="no SQL to test with offline; add a query selecting the traces "
                                               "concerned, or run with an LLM (--model)")  # fmt: skip
        evidence: list[Evidence] = []
        try:
            return self._test(tools, hypothesis, evidence)
        except BudgetExhausted as spent:
            return Verdict(status=None, evidence=evidence, reason=f"stopped: {spent}")

    def _test(self, tools: Toolbox, hypothesis: Hypothesis, evidence: list[Evidence]) -> Verdict:
        plan_sql = hypothesis.sql_queries[0]
        affected = tools.execute_sql(plan_sql.query, query_id=plan_sql.id).trace_ids(first_column_fallback=True)
        contrast = _contrast(tools.execute_sql(contrast_sql(plan_sql.query)))
        total = sum(int(row["traces"]) for row in contrast.values())
        numbers = _numbers(len(affected), total, contrast)
        if len(affected) < MIN_TRACES:
            outsider = _selected(tools, f"SELECT trace_id FROM traces WHERE trace_id NOT IN (SELECT trace_id FROM "
                                        f"({plan_sql.query}) a) ORDER BY request_time DESC LIMIT 1")  # fmt: skip
            for trace_id in outsider:
                read = tools.get_trace(trace_id)
                evidence.append(Evidence(trace_id=trace_id, supports=False,
                                         rationale=f"{plan_sql.id} selects {len(affected)} of {total} traces, fewer "
                                                   f"than {MIN_TRACES}: no pattern. This trace ({_gist(read)}) is "
                                                   "like the rest."))  # fmt: skip
            for trace_id in affected:
                evidence.append(
                    Evidence(trace_id=trace_id, supports=True, rationale=f"one of the few traces {plan_sql.id} selects")
                )
            reason = f"the pattern does not hold: {plan_sql.id} selects {len(affected)} of {total} traces, fewer than {MIN_TRACES}"
            return Verdict(status=HypothesisStatus.REJECTED, evidence=evidence, reason=reason)
        for trace_id in _spread(affected, READS_PER_TEST):
            read = tools.get_trace(trace_id)
            evidence.append(Evidence(trace_id=trace_id, supports=True,
                                     rationale=f"selected by {plan_sql.id}; {_gist(read, _subject(hypothesis))}"))  # fmt: skip
        return Verdict(status=HypothesisStatus.VALIDATED, evidence=evidence, reason=numbers)

    # -- issues -------------------------------------------------------------------------------------

    def draft_issue(self, tools: Toolbox, hypothesis: Hypothesis) -> IssueDraft | None:
        if hypothesis.category is Category.STRENGTH or not hypothesis.sql_queries:
            return None
        affected = set(_selected(tools, hypothesis.sql_queries[0].query))
        for issue in tools.list_issues():
            source = tools.get_hypothesis(issue.hypothesis_id)
            if source.sql_queries:
                other = set(_selected(tools, source.sql_queries[0].query))
                if len(affected & other) >= SAME_TRACES * len(affected | other):
                    return None  # the same traces: already reported as that issue
        contrast = _contrast(tools.execute_sql(contrast_sql(hypothesis.sql_queries[0].query), record=False))
        total = sum(int(row["traces"]) for row in contrast.values())
        share = len(affected) / max(total, 1)
        signal = signal_of(hypothesis)
        supporting = [e for e in hypothesis.evidence if e.supports]
        severity = _severity(share, contrast, hypothesis.category)
        description = (f"{hypothesis.statement}. Measured: {len(affected)} of {total} traces ({share:.1%}) "
                       f"({hypothesis.sql_queries[0].id}). {_numbers(len(affected), total, contrast)}. "
                       f"Root cause, from the traces read: {supporting[0].rationale if supporting else 'n/a'}. "
                       f"Severity {severity.value}: {share:.1%} of traffic affected.")  # fmt: skip
        return IssueDraft(title=issue_title(signal, hypothesis.statement), description=description[:10000],
                          severity=severity, evidence=supporting, category=hypothesis.category)  # fmt: skip

    def recommend(self, facts: ReportFacts) -> list[str]:
        lines = []
        by_hypothesis = {h.id: h for h in facts.hypotheses}
        for issue in facts.issues:
            source = by_hypothesis.get(issue.hypothesis_id)
            signal = signal_of(source) if source else "person"
            lines.append(f"{issue.id} ({issue.severity.value}): {RECOMMENDATION.get(signal, RECOMMENDATION['person'])}")
        return lines


def _plan() -> str:
    return ("1. Q1 selects the traces the hypothesis is about. 2. Compare them with the rest of the traffic: "
            "trace count, errors, median latency and negative human feedback (denominators from SQL). "
            "3. Read three of the selected traces and note what each shows. Validate when three or more traces "
            "match and the reads agree; reject when fewer than three match.")  # fmt: skip


def _ranked(findings: list[Finding], focus: list[str]) -> list[Finding]:
    """Largest problems first; findings that mention a focus area go to the front."""
    words = {w.lower() for area in focus for w in re.findall(r"[A-Za-z_]{4,}", area)}

    def key(finding: Finding) -> tuple[bool, int]:
        text = f"{finding.kind} {finding.statement} {finding.rationale}".lower()
        return (not any(w in text for w in words), -len(finding.affected))

    return sorted(findings, key=key)


def _severity(share: float, contrast: dict[str, dict[str, Any]], category: Category | None) -> Severity:
    affected = contrast.get("affected", {})
    failing = int(affected.get("errors") or 0) / max(int(affected.get("traces") or 1), 1)
    steps = [0.05, 0.15, 0.30] if category is Category.OPERATIONAL else [0.05, 0.20, 0.40]
    level = sum(share >= step for step in steps)
    if failing >= 0.5:
        level += 1  # the affected requests fail outright
    return [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL][min(level, 3)]


def _numbers(count: int, total: int, contrast: dict[str, dict[str, Any]]) -> str:
    a, r = contrast.get("affected", {}), contrast.get("rest", {})

    def part(row: dict[str, Any]) -> str:
        n = int(row.get("traces") or 0)
        return (f"{int(row.get('errors') or 0)}/{n} failed, median {_ms(row.get('p50_ms'))}, "
                f"{int(row.get('negative_feedback') or 0)}/{n} negative feedback")  # fmt: skip

    return f"{count} of {total} traces selected; affected: {part(a) if a else 'none'}; rest: {part(r) if r else 'none'}"


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.0f} ms"


def _contrast(result: QueryResult) -> dict[str, dict[str, Any]]:
    return {str(row["grp"]): row for row in result.records()}


def _selected(tools: Toolbox, query: str) -> list[str]:
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


def _subject(hypothesis: Hypothesis) -> str:
    """The span a statement is about, when it starts with one ("lookup_order fails in ...")."""
    words = hypothesis.statement.split()
    return words[0] if words else ""


def _name(value: Any) -> str:
    return str(value).strip('"') if value is not None else "(unnamed)"
