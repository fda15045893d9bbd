"""The discovery engine: which slices of the traffic have significantly worse (or better) outcomes
than the rest, and what they have in common; asked of any experiment, with nothing known in advance.

`discover` profiles the traces table, derives outcomes and features from what it finds, searches
single values and pairs with exact tests under Benjamini-Hochberg control, and returns findings with
the SQL that selects each one's traces. All counting is SQL over the `traces` table through the
engine protocol, so it runs on DuckDB, Spark and Databricks alike. The census stores the result.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from analyze_experiment.agent.core.discovery.catalog import features, outcomes
from analyze_experiment.agent.core.discovery.findings import Finding, findings
from analyze_experiment.agent.core.discovery.models import DiscoveryReport, FindingKind, FindingRecord, LookedAt
from analyze_experiment.agent.core.discovery.profile import profile
from analyze_experiment.agent.core.discovery.search import Params, Search
from analyze_experiment.agent.core.traces.engine import DerivingEngine, QueryResult, SqlEngine

__all__ = ["DiscoveryReport", "FindingRecord", "Params", "discover"]


ROW_CAP = 200_000  # feature values can be many; the counting query must never be cut
TIMEOUT_S = 600.0


def discover(
    engine: SqlEngine, custom_outcomes: dict[str, str] | None = None, params: Params | None = None
) -> DiscoveryReport:
    row_cap, timeout = engine.row_cap, engine.timeout_s
    engine.row_cap, engine.timeout_s = max(row_cap, ROW_CAP), max(timeout, TIMEOUT_S)
    try:
        return _discover(_Counting(engine), custom_outcomes, params or Params())
    finally:
        engine.row_cap, engine.timeout_s = row_cap, timeout


class _Counting:
    """The engine, counting the queries asked of it (and of the tables derived from it) for the report's
    "How we looked"."""

    def __init__(self, engine: SqlEngine, parent: _Counting | None = None) -> None:
        self.engine, self.name, self.parent, self.queries = engine, engine.name, parent, 0

    @property
    def row_cap(self) -> int:
        return self.engine.row_cap

    @row_cap.setter
    def row_cap(self, value: int) -> None:
        self.engine.row_cap = value

    @property
    def timeout_s(self) -> float:
        return self.engine.timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self.engine.timeout_s = value

    def execute(self, sql: str) -> QueryResult:
        self.tally()
        return self.engine.execute(sql)

    def tally(self) -> None:
        if self.parent:
            self.parent.tally()
        else:
            self.queries += 1

    @contextmanager
    def base_table(self, sql: str) -> Iterator[_Counting | None]:
        """The rows `sql` selects as a table (counted as one query), or None where the engine cannot
        hold one and every count derives them again."""
        if not isinstance(self.engine, DerivingEngine):
            yield None
            return
        self.tally()
        with self.engine.derived(sql) as table:
            yield _Counting(table, parent=self)


def _discover(engine: _Counting, custom_outcomes: dict[str, str] | None, params: Params) -> DiscoveryReport:
    started = time.perf_counter()
    for name, sql in (custom_outcomes or {}).items():
        check_outcome(engine, name, sql)
    measured = profile(engine)
    engine.row_cap = max(engine.row_cap, measured.traces)  # one query selects every finding's traces
    searched_outcomes = outcomes(measured, params.min_support, custom_outcomes)
    searched_features = features(measured)
    search = Search(engine, searched_outcomes, searched_features, params)
    with engine.base_table(search.base_sql()) as table:
        result = search.run(table)
        found = findings(search, result, measured.traces, params)
    looked = LookedAt(
        traces=measured.traces,
        outcomes=[f"{o.name}: {o.explanation}" for o in searched_outcomes],
        features=[f.name for f in searched_features],
        tests=len(result.tests),
        counted=result.counted,
        pairs_tested=result.pairs_tested,
        significant=sum(1 for t in result.tests if t.q <= params.fdr),
        fdr=params.fdr,
        min_support=params.min_support,
        min_ratio=params.min_ratio,
        max_pair_members=params.max_pair_members,
        queries=engine.queries,
        seconds=round(time.perf_counter() - started, 2),
    )
    return DiscoveryReport(looked=looked, findings=[_record(f) for f in found])


def check_outcome(engine: SqlEngine, name: str, sql: str) -> None:
    """A person's outcome must be a boolean the table can evaluate; say which one is not."""
    from analyze_experiment.agent.core.errors import UserError

    try:
        engine.execute(f"SELECT count_if(({sql})) AS n FROM traces")
    except UserError as failed:
        raise UserError(f"the outcome '{name}' ({sql}) cannot be evaluated: {failed}") from failed


def _record(finding: Finding) -> FindingRecord:
    kind: FindingKind = "strength" if finding.strength else "near_miss" if finding.near_miss else "problem"
    return FindingRecord(
        kind=kind,
        statement=finding.statement,
        outcome_explanation=finding.outcome.explanation,
        affected_sql=finding.affected_sql,
        affected_count=finding.affected_count,
        severity=finding.severity,
        weighted_share=round(finding.weighted_share, 4),
        statistics=finding.statistics(),
        also=finding.also,
    )
