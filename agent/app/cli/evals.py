"""`analyze-experiment evals ...`: recorded scenarios with known problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from analyze_experiment.agent.app.cli.common import current_services, output_option


@click.group()
def evals() -> None:
    """Recorded scenarios (traces with known, labelled problems) for evaluating the analyst."""


@evals.command("load")
@click.argument("recordings", nargs=-1, required=True, metavar="DIR|SCENARIO|random-SEED|control-SEED...")
@click.option("--experiment-name", help="Name of the new experiment. [default: scenario-<name>, or the draw's name]")
@output_option
def load(recordings: tuple[str, ...], experiment_name: str | None, output: str) -> None:
    """Load recordings (directories, or committed scenarios: support, travel, data, injection, all), or
    random draws as `evals run` makes them (random-<seed>, control-<seed>), into new experiments of the
    tracking store.

    \b
    analyze-experiment evals load support travel
    analyze-experiment evals load ./my-recording
    """
    import re

    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.errors import UserError
    from analyze_experiment.agent.simulation.recordings import load_recording, read_expected, recording_dir
    from analyze_experiment.agent.simulation.scenarios import SCENARIOS

    chosen = sorted(SCENARIOS) if "all" in recordings else list(dict.fromkeys(recordings))
    if experiment_name and len(chosen) > 1:
        raise UserError("--experiment-name names one experiment; load one recording at a time with it")
    draws = {name: found for name in chosen if (found := re.fullmatch(r"(random|control)-(\d+)", name))}
    paths = {name: recording_dir(name) for name in chosen if name not in draws}  # refuse unknown ones first
    services = current_services()
    loaded = []
    for name in chosen:
        if name in draws:
            loaded.append(_load_draw(services, name, draws[name][1], draws[name][2], experiment_name))
            continue
        expected = read_expected(paths[name])
        experiment_id = load_recording(services.client, str(paths[name]), experiment_name)
        loaded.append(
            {
                "recording": paths[name].name,
                "experiment_id": experiment_id,
                "traces": expected["traces"],
                "problems": [p["kind"] for p in expected.get("problems", [])],
            }
        )
    if output == "json":
        console.emit_json(loaded)
        return
    for item in loaded:
        console.show(
            console.plain(
                f"loaded {item['recording']} as experiment {item['experiment_id']} "
                f"({item['traces']} traces; planted: {', '.join(item['problems']) or 'none'})"
            )
        )
        for line in item.get("descriptions", []):
            console.show(console.plain(f"  {line}"))


def _load_draw(services: Any, name: str, kind: str, seed: str, experiment_name: str | None) -> dict[str, Any]:
    from analyze_experiment.agent.core.errors import UserError
    from analyze_experiment.evals.cases import RANDOM_TRACES
    from analyze_experiment.evals.generators.random_agents import log_draw

    target = experiment_name or name
    if services.client.get_experiment_by_name(target) is not None:
        raise UserError(f"experiment '{target}' already exists in this store; pass another --experiment-name")
    experiment_id = services.client.create_experiment(target, tags={"scenario": name})
    made = log_draw(services.client, experiment_id, int(seed), RANDOM_TRACES, control=kind == "control")
    return {
        "recording": name,
        "experiment_id": experiment_id,
        "traces": len(made.traces),
        "problems": [p.kind for p in made.problems],
        "summary": made.summary,
        "descriptions": [f"{p.kind}: {p.description}" for p in made.problems] + made.decoys,
    }


@evals.command("record")
@click.option("--experiment-id", "-x", help="The experiment to record. [default: $MLFLOW_EXPERIMENT_ID]")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory to write the recording to.")
@output_option
def record(experiment_id: str | None, out: Path, output: str) -> None:
    """Record an experiment's traces (for example real production traffic) as an eval set.

    \b
    analyze-experiment evals record -x 1 --out ./my-recording
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.simulation.recordings import record_experiment

    services = current_services()
    count = record_experiment(services.client, services.experiment_id(experiment_id), out)
    if output == "json":
        console.emit_json({"out": str(out), "traces": count})
    else:
        console.show(console.plain(f"recorded {count} traces to {out}; label its problems in {out / 'expected.yaml'}"))


@evals.command("run")
@click.option("--scenario", "scenarios", multiple=True, help="Committed scenario(s) to run. [default: all]")
@click.option(
    "--held-out/--no-held-out",
    default=True,
    show_default=True,
    help="Also run fresh draws of each scenario from seeds never used in development.",
)
@click.option("--model", default="offline", show_default=True, help="The analyst: offline, or a chat model name.")
@click.option("--record", type=click.Path(path_type=Path), help="Save every chat-model exchange under this directory.")
@click.option("--replay", type=click.Path(path_type=Path), help="Answer chat-model requests from a recording only.")
@click.option("--experiment-id", help="Score an analysis of your own experiment (with --expected) instead.")
@click.option("--expected", type=click.Path(path_type=Path), help="Your labels for --experiment-id (expected.yaml).")
@click.option("--seeds", default="4242,9001", show_default=True, help="Seeds of the held-out draws (comma-separated).")
@click.option(
    "--random-draws",
    type=click.IntRange(0, 500),
    default=30,
    show_default=True,
    help="Random agents with random planted problems to run (0: none).",
)
@click.option(
    "--controls",
    type=click.IntRange(0, 100),
    default=5,
    show_default=True,
    help="Negative controls (random agents with nothing planted) to run.",
)
@click.option(
    "--random-seeds",
    metavar="dev|commit|commit:HASH|N,N,...",
    help="Seeds of the random draws and controls: the fixed development set (dev), seeds derived from "
    "the commit hash (commit), or your own. [default: commit where $CI is set, else dev]",
)
@click.option(
    "--random-traces",
    type=click.IntRange(50, 5000),
    default=300,
    show_default=True,
    help="Traces per random draw and control.",
)
@click.option("--jobs", type=click.IntRange(1, 16), help="Cases run at once. [default: the number of CPUs, at most 4]")
@click.option("--gate", is_flag=True, help="Exit 1 when the scores fall below the quality gate (CI uses this).")
@output_option
def run_evals(
    scenarios: tuple[str, ...],
    held_out: bool,
    model: str,
    record: Path | None,
    replay: Path | None,
    experiment_id: str | None,
    expected: Path | None,
    seeds: str,
    random_draws: int,
    controls: int,
    random_seeds: str | None,
    random_traces: int,
    jobs: int | None,
    gate: bool,
    output: str,
) -> None:
    """Run the whole analysis on cases with known problems, with automatic approval, and score it.

    \b
    Cases: the committed scenarios, held-out draws of them, random agents with random planted problems
    (random-<seed>) and negative controls with none (control-<seed>); or your own labelled experiment.
    Scores per case: issue recall and precision, evidence precision, invariant violations (must be 0),
    census exactness, hypotheses proposed/tested/validated/rejected, LLM calls, tokens, cost, wall time.
    Over the random draws: recall and precision per outcome family and per cause family, and false
    issues per control. Each case runs in a fresh store under the home directory; scores are logged as
    runs of the `analyze-experiment-evals` experiment in the tracking store, to compare analyst versions.

    \b
    analyze-experiment evals run --scenario support
    analyze-experiment evals run --random-seeds commit --jobs 2 --gate
    """
    import os
    import time

    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.errors import UserError
    from analyze_experiment.agent.core.tracking import check_store_exists
    from analyze_experiment.evals import cases as eval_cases
    from analyze_experiment.evals.gate import failures
    from analyze_experiment.evals.runner import CaseRunner, analyst_version, log_scores
    from analyze_experiment.evals.summary import summarize

    if bool(experiment_id) != bool(expected):
        raise UserError("--experiment-id and --expected go together: your experiment and your labels for it")
    services = current_services()
    check_store_exists(services.settings)  # the scores are logged there: say so now, not after minutes of cases
    source = random_seeds or eval_cases.default_seed_source()
    if experiment_id and expected:
        cases = [eval_cases.own_experiment(experiment_id, expected)]
    else:
        names = list(dict.fromkeys(scenarios)) or ["support", "travel", "data", "injection"]
        try:
            seed_list = tuple(int(seed) for seed in seeds.split(",") if seed.strip())
        except ValueError as bad:
            raise UserError(f"--seeds takes whole numbers separated by commas, not '{seeds}'") from bad
        draws = eval_cases.random_seeds(source, random_draws)[:random_draws] if random_draws else ()
        nulls = eval_cases.random_seeds(source, controls, control=True) if controls else ()
        cases = [
            *eval_cases.committed(names),
            *(eval_cases.held_out(names, seed_list) if held_out else []),
            *eval_cases.random_draws(draws, random_traces),
            *eval_cases.random_draws(nulls, random_traces, control=True),
        ]
    workdir = services.settings.home / "evals" / time.strftime("%Y%m%d-%H%M%S")
    runner = CaseRunner(services.settings, workdir, model, record=record, replay=replay)
    workers = jobs or min(os.cpu_count() or 1, 4)
    started = time.perf_counter()
    with console.progress_bar() as progress:
        task = progress.add_task(f"{len(cases)} cases, {workers} at a time", total=len(cases))
        results = runner.run_all(cases, workers, on_done=lambda _scores: progress.advance(task))
    summary = summarize(results)
    below = failures(results)
    body = {
        "cases": [r.model_dump(mode="json") for r in results],
        "summary": summary.model_dump(mode="json"),
        "seeds": source,
        "gate": below,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    (workdir / "results.json").parent.mkdir(parents=True, exist_ok=True)
    (workdir / "results.json").write_text(console.json_text(body))
    log_scores(services, results, analyst_version(), summary)
    if output == "json":
        console.emit_json(body)
    else:
        console.show_wide(console.eval_table(results))
        if summary.random_draws or summary.controls:
            console.show_wide(console.family_table(summary, source))
        console.show(console.plain(f"results: {workdir / 'results.json'}"))
    if gate and below:
        raise click.ClickException("quality gate failed: " + "; ".join(below))
