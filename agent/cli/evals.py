"""`analyze-experiment evals ...`: recorded scenarios with known problems."""

from __future__ import annotations

from pathlib import Path

import click

from agent.cli.common import output_option, runtime


@click.group()
def evals() -> None:
    """Recorded scenarios (traces with known, labelled problems) for evaluating the analyst."""


@evals.command("load")
@click.argument("recordings", nargs=-1, required=True, metavar="DIR|SCENARIO...")
@click.option("--experiment-name", help="Name of the new experiment. [default: scenario-<name>]")
@output_option
def load(recordings: tuple[str, ...], experiment_name: str | None, output: str) -> None:
    """Load recordings (directories, or committed scenarios: support, travel, data, injection, all)
    into new experiments of the tracking store."""
    from agent import console
    from agent.errors import UserError
    from agent.simulation.recordings import load_recording, read_expected, recording_dir
    from agent.simulation.scenarios import SCENARIOS

    chosen = sorted(SCENARIOS) if "all" in recordings else list(dict.fromkeys(recordings))
    if experiment_name and len(chosen) > 1:
        raise UserError("--experiment-name names one experiment; load one recording at a time with it")
    paths = [recording_dir(name) for name in chosen]  # refuse unknown ones before writing anything
    rt = runtime()
    loaded = []
    for path in paths:
        expected = read_expected(path)
        experiment_id = load_recording(rt.client, str(path), experiment_name)
        loaded.append({"recording": path.name, "experiment_id": experiment_id, "traces": expected["traces"],
                       "problems": [p["kind"] for p in expected.get("problems", [])]})  # fmt: skip
    if output == "json":
        console.emit_json(loaded)
        return
    for item in loaded:
        console.show(console.plain(f"loaded {item['recording']} as experiment {item['experiment_id']} "
                                   f"({item['traces']} traces; planted: {', '.join(item['problems']) or 'none'})"))  # fmt: skip


@evals.command("record")
@click.option("--experiment-id", "-x", help="The experiment to record. [default: $MLFLOW_EXPERIMENT_ID]")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory to write the recording to.")
@output_option
def record(experiment_id: str | None, out: Path, output: str) -> None:
    """Record an experiment's traces (for example real production traffic) as an eval set."""
    from agent import console
    from agent.simulation.recordings import record_experiment

    rt = runtime()
    count = record_experiment(rt.client, rt.experiment_id(experiment_id), out)
    if output == "json":
        console.emit_json({"out": str(out), "traces": count})
    else:
        console.show(console.plain(f"recorded {count} traces to {out}; label its problems in {out / 'expected.yaml'}"))
