"""`analyze-experiment runs link-traces`: the seed's R1, refusing ids that are not real traces."""

from __future__ import annotations

import click

from analyze_experiment.agent.app.cli.common import current_services, output_option, run_id_option


@click.group()
def runs() -> None:
    """Analysis runs."""


@runs.command("link-traces")
@run_id_option()
@click.option("--trace-id", "-t", "trace_ids", multiple=True, required=True, help="Repeatable.")
@output_option
def link_traces(run_id: str, trace_ids: tuple[str, ...], output: str) -> None:
    """Link traces of the run's experiment to the run (any number; batched for MLflow).

    \b
    analyze-experiment runs link-traces -r RUN_ID -t tr-0123... -t tr-4567...
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.insights import invariants
    from analyze_experiment.agent.core.traces.links import TraceLinks

    services = current_services()
    analysis = services.insights.get_analysis(run_id)
    invariants.require_writable(analysis)
    links = TraceLinks(services.client)
    wanted = list(dict.fromkeys(trace_ids))
    missing = set(wanted) - links.existing(analysis.experiment_id, wanted)
    invariants.require_all_present(
        missing, f"not traces of experiment {analysis.experiment_id}", "nothing was linked; check the ids"
    )
    linked = links.link(run_id, wanted)
    if output == "json":
        console.emit_json({"run_id": run_id, "linked": wanted, "count": linked})
    else:
        console.show(console.plain(f"linked {linked} traces to run {run_id}"))
