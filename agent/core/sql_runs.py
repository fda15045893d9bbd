"""Running an analyst's SQL: sync the table, run it sandboxed, link what it returns, keep the lineage."""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel

from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.traces.engine import QueryResult, SqlEngine
from analyze_experiment.agent.core.wording import count, number


class SqlOutcome(BaseModel):
    result: QueryResult
    linked_traces: int = 0
    recorded_as: str | None = None


def run_sql(
    services: Services,
    open_table: Callable[[str], SqlEngine],
    query: str,
    *,
    experiment_id: str,
    run_id: str | None,
    hypothesis_id: str | None,
    query_id: str | None,
    max_rows: int,
    timeout: float,
) -> SqlOutcome:
    """`open_table(experiment_id)` gives the synced table; the caller chooses engine and progress, and
    has resolved the experiment (`experiment_of`), so the graph's many queries do not re-read the run."""
    from analyze_experiment.agent.core.insights.models import SqlQuery
    from analyze_experiment.agent.core.traces.links import TraceLinks
    from analyze_experiment.agent.core.traces.sql import parse

    parse(query)  # refuse bad SQL before any sync or write
    engine = open_table(experiment_id)
    engine.row_cap, engine.timeout_s = max_rows, timeout
    result = engine.execute(query)
    outcome = SqlOutcome(result=result)
    if run_id and result.trace_ids():
        outcome.linked_traces = TraceLinks(services.client).link(run_id, result.trace_ids())
    if run_id and hypothesis_id:
        hypothesis = services.insights.get_hypothesis(run_id, hypothesis_id.upper())
        # the same query run again (a retry, a resumed test) keeps its citation id
        same = next((q.id for q in hypothesis.sql_queries if q.query.strip() == query.strip()), None)
        qid = query_id or same or next_query_id([q.id for q in hypothesis.sql_queries])
        summary = count(result.row_count + result.rows_cut, "row") + _first_row(result)
        services.insights.update_hypothesis(
            run_id, hypothesis.id, sql_queries=[SqlQuery(id=qid, query=query, result_summary=summary)]
        )
        outcome.recorded_as = f"{hypothesis.id}/{qid}"
    return outcome


def check_selection(engine: SqlEngine, query: str) -> None:
    """A hypothesis's query names the traces it is about, so it must run and return `trace_id`."""
    from analyze_experiment.agent.core.errors import UserError
    from analyze_experiment.agent.core.traces.engine import TRACE_COLUMN
    from analyze_experiment.agent.core.traces.sql import parse

    parse(query)
    columns = engine.execute(f"SELECT * FROM ({query}) AS selection LIMIT 0").columns
    if TRACE_COLUMN not in columns:
        raise UserError(
            f"a hypothesis's SQL selects the traces it is about, but this one returns "
            f"{', '.join(columns)} and no trace_id: write SELECT trace_id FROM traces WHERE ..."
        )


def experiment_of(services: Services, run_id: str | None, experiment_id: str | None) -> str:
    """The analysis's own experiment (refused when another is named, or when the analysis is finished: its
    results would be linked to it); without a run, the one given or the default."""
    from analyze_experiment.agent.core.errors import InvariantViolation
    from analyze_experiment.agent.core.insights import invariants

    if not run_id:
        return services.experiment_id(experiment_id)
    analysis = services.insights.get_analysis(run_id)
    if experiment_id and experiment_id != analysis.experiment_id:
        raise InvariantViolation(
            f"run {run_id} belongs to experiment {analysis.experiment_id}, not {experiment_id}; "
            "drop --experiment-id or pass the run of an analysis of that experiment"
        )
    invariants.require_writable(analysis)
    return analysis.experiment_id


def next_query_id(taken: list[str]) -> str:
    numbers = [int(m[1]) for q in taken if (m := re.match(r"^Q(\d+)$", q))]
    return f"Q{max(numbers, default=0) + 1}"


def _first_row(result: QueryResult) -> str:
    if not result.rows:
        return ""
    pairs = ", ".join(f"{c}={number(v)}" for c, v in zip(result.columns, result.rows[0], strict=False))
    return f"; first: {pairs[:300]}"
