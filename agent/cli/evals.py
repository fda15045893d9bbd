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


@evals.command("run")
@click.option("--scenario", "scenarios", multiple=True, help="Committed scenario(s) to run. [default: all]")
@click.option("--held-out/--no-held-out", default=True, show_default=True,
              help="Also run fresh draws of each scenario from seeds never used in development.")  # fmt: skip
@click.option("--model", default="offline", show_default=True, help="The analyst: offline, or a chat model name.")
@click.option("--record", type=click.Path(path_type=Path), help="Save every chat-model exchange under this directory.")
@click.option("--replay", type=click.Path(path_type=Path), help="Answer chat-model requests from a recording only.")
@click.option("--experiment-id", help="Score an analysis of your own experiment (with --expected) instead.")
@click.option("--expected", type=click.Path(path_type=Path), help="Your labels for --experiment-id (expected.yaml).")
@click.option("--seeds", default="4242,9001", show_default=True, help="Seeds of the held-out draws (comma-separated).")
@click.option("--jobs", type=click.IntRange(1, 16), help="Cases run at once. [default: the number of CPUs, at most 4]")
@click.option("--gate", is_flag=True, help="Exit 1 when a case falls below the quality gate (CI uses this).")
@output_option
def run_evals(scenarios: tuple[str, ...], held_out: bool, model: str, record: Path | None, replay: Path | None,
              experiment_id: str | None, expected: Path | None, seeds: str, jobs: int | None, gate: bool,
              output: str) -> None:  # fmt: skip
    """Run the whole analysis on cases with known problems, with automatic approval, and score it.

    \b
    Scores per case: issue recall and precision, evidence precision, invariant violations (must be 0),
    census exactness, hypotheses proposed/tested/validated/rejected, LLM calls, tokens, cost, wall time.
    Each case runs in a fresh store under the home directory; scores are logged as runs of the
    `analyze-experiment-evals` experiment in the tracking store, to compare analyst versions.
    """
    import time

    from agent import console
    from agent.errors import UserError
    from evals.cases import committed, own_experiment
    from evals.cases import held_out as held_out_cases
    from evals.gate import failures
    from evals.runner import CaseRunner, analyst_version, log_scores

    if bool(experiment_id) != bool(expected):
        raise UserError("--experiment-id and --expected go together: your experiment and your labels for it")
    rt = runtime()
    if experiment_id and expected:
        cases = [own_experiment(experiment_id, expected)]
    else:
        names = list(dict.fromkeys(scenarios)) or ["support", "travel", "data", "injection"]
        try:
            seed_list = tuple(int(seed) for seed in seeds.split(",") if seed.strip())
        except ValueError as bad:
            raise UserError(f"--seeds takes whole numbers separated by commas, not '{seeds}'") from bad
        cases = committed(names) + (held_out_cases(names, seed_list) if held_out else [])
    workdir = rt.settings.home / "evals" / time.strftime("%Y%m%d-%H%M%S")
    runner = CaseRunner(rt.settings, workdir, model, record=record, replay=replay)
    import os

    workers = jobs or min(os.cpu_count() or 1, 4)
    with console.progress_bar() as progress:
        task = progress.add_task(f"{len(cases)} cases, {workers} at a time", total=len(cases))
        results = runner.run_all(cases, workers, on_done=lambda _scores: progress.advance(task))
    log_scores(rt, results, analyst_version())
    (workdir / "results.json").parent.mkdir(parents=True, exist_ok=True)
    (workdir / "results.json").write_text(console.json_text([r.model_dump(mode="json") for r in results]))
    if output == "json":
        console.emit_json([r.model_dump(mode="json") for r in results])
    else:
        console.show_wide(console.eval_table(results))
        console.show(console.plain(f"results: {workdir / 'results.json'}"))
    below = failures(results)
    if gate and below:
        raise click.ClickException("quality gate failed: " + "; ".join(below))
