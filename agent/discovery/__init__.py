"""The discovery engine: which slices of the traffic have significantly worse (or better) outcomes
than the rest, and what they have in common; asked of any experiment, with nothing known in advance.

`discover` profiles the traces table, derives outcomes and features from what it finds, searches
single values and pairs with exact tests under Benjamini-Hochberg control, and returns findings with
the SQL that selects each one's traces. All counting is SQL over the `traces` table through the
engine protocol, so it runs on DuckDB, Spark and Databricks alike. The census stores the result.
"""

from __future__ import annotations

import time

from agent.discovery.catalog import features, outcomes
from agent.discovery.findings import Finding, findings
from agent.discovery.models import DiscoveryReport, FindingKind, FindingRecord, LookedAt
from agent.discovery.profile import profile
from agent.discovery.search import Params, Search
from agent.traces.engine import SqlEngine

__all__ = ["DiscoveryReport", "FindingRecord", "Params", "discover"]


def discover(
    engine: SqlEngine, custom_outcomes: dict[str, str] | None = None, params: Params | None = None
) -> DiscoveryReport:
    params = params or Params()
    started = time.perf_counter()
    measured = profile(engine)
    searched_outcomes = outcomes(measured, params.min_support, custom_outcomes)
    searched_features = features(measured)
    search = Search(engine, searched_outcomes, searched_features, params)
    result = search.run()
    found = findings(engine, search, result, measured.traces, params)
    looked = LookedAt(
        traces=measured.traces,
        outcomes=[f"{o.name}: {o.explanation}" for o in searched_outcomes],
        features=[f.name for f in searched_features],
        tests=len(result.tests),
        pairs_tested=result.pairs_tested,
        significant=sum(1 for t in result.tests if t.q <= params.fdr),
        fdr=params.fdr,
        min_support=params.min_support,
        max_pair_members=params.max_pair_members,
        queries=search.queries + 8,
        seconds=round(time.perf_counter() - started, 2),
    )
    return DiscoveryReport(looked=looked, findings=[_record(f) for f in found])


def _record(finding: Finding) -> FindingRecord:
    kind: FindingKind = "strength" if finding.strength else "near_miss" if finding.near_miss else "problem"
    return FindingRecord(kind=kind, statement=finding.statement, outcome_explanation=finding.outcome.explanation,
                         affected_sql=finding.affected_sql, affected_count=len(finding.affected),
                         severity=finding.severity, weighted_share=round(finding.weighted_share, 4),
                         statistics=finding.statistics(), also=finding.also)  # fmt: skip
