"""`analyze-experiment doctor`: can we reach the store, the experiment and its traces?"""

from __future__ import annotations

import click

from analyze_experiment.agent.app.cli.common import current_services, experiment_option, output_option


@click.command()
@experiment_option
@click.option(
    "--sample", type=click.IntRange(1, 1000), default=5, show_default=True, help="How many traces to search as a check."
)
@output_option
def doctor(experiment_id: str | None, sample: int, output: str) -> None:
    """Check the connection: which store and experiment, how many traces, and a sample search.

    \b
    analyze-experiment doctor
    analyze-experiment doctor -x 1 --sample 10
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.diagnosis import diagnose

    services = current_services()
    report = diagnose(services, experiment_id, sample)
    if output == "json":
        console.emit_json(report.model_dump(mode="json"))
    else:
        console.show(console.diagnosis_view(report))
    if report.problem:
        from analyze_experiment.agent.core.errors import UserError

        raise UserError(report.problem)
