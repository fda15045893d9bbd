"""`analyze-experiment traces ...`: search and read traces (the seed's T2 and T3)."""

from __future__ import annotations

import click

from analyze_experiment.agent.app.cli.common import (
    current_services,
    engine_options,
    experiment_option,
    output_option,
    run_id_option,
    traces_table,
)

DEFAULT_FIELDS_HELP = (
    "Comma-separated paths into MLflow's trace JSON, as `mlflow traces` takes them: "
    "info.trace_id,info.state,info.trace_metadata.`mlflow.traceInputs`,data.spans.*.name"
)


@click.group()
def traces() -> None:
    """Search and read traces; with --run-id, everything read is linked to that analysis."""


def _fields(extract_fields: str | None) -> list[str]:
    from analyze_experiment.agent.core.traces.views import check_field_paths

    fields = [f.strip() for f in extract_fields.split(",") if f.strip()] if extract_fields else []
    check_field_paths(fields)
    return fields


@traces.command("search")
@experiment_option
@click.option("--filter-string", "-f", help="MLflow trace filter, e.g. \"trace.status = 'ERROR'\" (AND only).")
@click.option(
    "--max-results",
    "-n",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Traces per page (1-1000); page on with --page-token.",
)
@click.option("--order-by", help="Comma-separated, e.g. 'timestamp_ms DESC,execution_time_ms DESC'.")
@click.option("--page-token", help="Continue from a previous search's next_page_token.")
@run_id_option("Link every returned trace to this analysis run.", required=False)
@click.option("--extract-fields", help=DEFAULT_FIELDS_HELP)
@output_option
def search(
    experiment_id: str | None,
    filter_string: str | None,
    max_results: int,
    order_by: str | None,
    page_token: str | None,
    run_id: str | None,
    extract_fields: str | None,
    output: str,
) -> None:
    """Search the experiment's traces.

    \b
    analyze-experiment traces search -x 1 -f "trace.status = 'ERROR'" -n 20
    analyze-experiment traces search -x 1 -r RUN_ID   # and link them to the analysis
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.traces.views import extract_fields as project
    from analyze_experiment.agent.core.traces.views import needs_spans, summarize

    services = current_services()
    fields = _fields(extract_fields)
    page = services.traces.search(
        services.experiment_id(experiment_id),
        filter_string=filter_string,
        max_results=max_results,
        order_by=[o.strip() for o in order_by.split(",")] if order_by else None,
        page_token=page_token,
        include_spans=needs_spans(fields),
        link_to_run=run_id,
    )
    summaries = [summarize(trace.info) for trace in page.traces]
    if output == "json":
        items = [project(t.to_dict(), fields) for t in page.traces] if fields else summaries
        console.emit_json({"traces": items, "next_page_token": page.next_page_token, "linked_to_run": run_id})
        return
    console.show(console.trace_summaries_table(summaries, run_id))
    if page.next_page_token:
        console.show(console.plain(f"next page: --page-token {page.next_page_token}"))


@traces.command("get")
@click.option("--trace-id", "-t", required=True, help="The trace, like tr-0123abcd... (from `traces search`).")
@run_id_option("Link the trace to this analysis run before showing it.", required=False)
@click.option("--extract-fields", help=DEFAULT_FIELDS_HELP)
@click.option("--full", is_flag=True, help="MLflow's complete trace JSON instead of the readable view.")
@output_option
def get(trace_id: str, run_id: str | None, extract_fields: str | None, full: bool, output: str) -> None:
    """Read one trace: inputs, outputs, span tree, errors and assessments.

    \b
    analyze-experiment traces get -t tr-0123... -r RUN_ID
    analyze-experiment traces get -t tr-0123... --extract-fields info.state,data.spans.*.name
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.traces.views import extract_fields as project
    from analyze_experiment.agent.core.traces.views import view

    trace = current_services().traces.get(trace_id, link_to_run=run_id)
    fields = _fields(extract_fields)
    if fields or full:
        console.emit_json(project(trace.to_dict(), fields) if fields else trace.to_dict())
        return
    readable = view(trace)
    if output == "json":
        console.emit_json(readable)
    else:
        console.show(console.trace_view(readable))


@traces.command("execute-sql")
@click.option("--sql", "-s", "query", required=True, help="One Databricks SQL query over the `traces` table.")
@experiment_option
@run_id_option("Analysis run: link the trace ids in the result to it.", required=False)
@click.option("--hypothesis-id", "-H", help="Record the query in this hypothesis's lineage (needs --run-id).")
@click.option("--query-id", "-q", help="The lineage id, like Q3. [default: the next free one]")
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Rows returned; the rest are counted.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds before the query is stopped.",
)
@click.option("--refresh", is_flag=True, help="Rebuild the local traces table from scratch first.")
@engine_options
@output_option
def execute_sql(
    query: str,
    experiment_id: str | None,
    run_id: str | None,
    hypothesis_id: str | None,
    query_id: str | None,
    max_rows: int,
    timeout: float,
    refresh: bool,
    engine: str | None,
    table_name: str | None,
    output: str,
) -> None:
    """Run read-only SQL over the experiment's traces table (Databricks SQL, on a local DuckDB copy).

    \b
    analyze-experiment traces execute-sql -x 1 --sql "SELECT state, count(*) FROM traces GROUP BY 1"
    analyze-experiment traces execute-sql -r RUN_ID -H H1 --sql "SELECT trace_id FROM traces WHERE state = 'ERROR'"
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.errors import UserError
    from analyze_experiment.agent.core.sql_runs import experiment_of, run_sql

    if hypothesis_id and not run_id:
        raise UserError("--hypothesis-id needs --run-id (the analysis the hypothesis belongs to)")
    services = current_services()
    outcome = run_sql(
        services,
        lambda experiment: traces_table(experiment, refresh, engine, table_name),
        query,
        experiment_id=experiment_of(services, run_id, experiment_id),
        run_id=run_id,
        hypothesis_id=hypothesis_id,
        query_id=query_id,
        max_rows=max_rows,
        timeout=timeout,
    )
    if output == "json":
        console.emit_json(outcome)
    else:
        console.show(console.query_view(outcome))
