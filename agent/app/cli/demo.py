"""`analyze-experiment demo`: a ready-made experiment to try the tool on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from analyze_experiment.agent.app.cli.common import current_services, output_option, state

if TYPE_CHECKING:
    from analyze_experiment.agent.app.demo import DemoExperiment


@click.command()
@click.option("--traces", default=500, show_default=True, help="How many traces to simulate.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same traffic.")
@click.option(
    "--scenario",
    default="support",
    show_default=True,
    type=click.Choice(["support", "travel", "data", "injection"]),
    help="Which traced agent and problems.",
)
@click.option("--tracking-uri", help="Store to write to. [default: $MLFLOW_TRACKING_URI or the embedded store]")
@output_option
def demo(traces: int, seed: int, scenario: str, tracking_uri: str | None, output: str) -> None:
    """Create (or reuse) a demo experiment of simulated agent traffic with known problems.

    Each scenario, --traces and --seed has its own experiment (demo-support-500-s7): the same ones
    reuse it, others create another beside it; no experiment is ever replaced or deleted. A SQLite
    --tracking-uri that does not exist yet is created.

    \b
    analyze-experiment demo
    analyze-experiment demo --scenario travel --traces 200 --seed 3
    analyze-experiment demo --tracking-uri sqlite:///team/mlflow.db
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.app.demo import ensure_demo
    from analyze_experiment.agent.core.errors import UserError

    if not 1 <= traces <= 20000:
        raise UserError("--traces must be between 1 and 20000")
    if tracking_uri:
        state().tracking_uri = tracking_uri
    services = current_services()
    columns = (TextColumn("logging demo traces"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console.err, transient=True) as progress:
        task = progress.add_task("demo", total=traces)
        made = ensure_demo(services, scenario, traces, seed, on_traces=lambda n: progress.advance(task, n))
    if output == "json":
        console.emit_json(made)
        return
    prefix = "analyze-experiment" + (
        "" if services.settings.tracking_uri_is_default else f" --tracking-uri '{made.tracking_uri}'"
    )
    lines = [
        _what_happened(made),
        "analyse it:",
        f"  {prefix} doctor --experiment-id {made.experiment_id}",
        f"  {prefix} insights create-analysis --experiment-id {made.experiment_id} --name '{made.name} analysis'",
        f"  {prefix} insights create-baseline-census --run-id <the run id it prints>",
    ]
    click.echo("\n".join(lines))  # plain lines: commands must survive copy and paste unwrapped


def _what_happened(made: DemoExperiment) -> str:
    where = f"experiment {made.experiment_id} ({made.name}: {made.traces} traces) in {made.tracking_uri}"
    if made.created:
        return f"created {where}"
    return f"reused {where}; it already held this scenario, size and seed, and nothing in it changed"
