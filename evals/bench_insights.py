"""Benchmark: our CLI against `python -m mlflow traces ...` on one store of 2,000 traces, and the
library's in-process costs. A script, not a test: run it and read the table.

    uv run python evals/bench_insights.py [--traces 2000] [--repeat 3] [--store DIR]

The store is built once (simulated traces) and reused from --store on later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")
ROOT = Path(__file__).resolve().parents[1]


def build_store(directory: Path, traces: int) -> tuple[str, str]:
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    marker = directory / "experiment.json"
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved["traces"] == traces:
            return uri, saved["experiment_id"]
    from mlflow import MlflowClient

    from analyze_experiment.agent.simulation.scenarios import log_scenario

    directory.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(
        f"bench-{traces}-{time.time_ns()}", artifact_location=str(directory / "artifacts")
    )
    started = time.perf_counter()
    log_scenario(client, experiment_id, "support", traces, seed=1)
    print(f"built {traces} traces in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    marker.write_text(json.dumps({"traces": traces, "experiment_id": experiment_id}))
    return uri, experiment_id


def wall(command: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def in_process(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", type=Path, default=ROOT / "bench-results" / "store-2000")
    args = parser.parse_args()
    uri, experiment_id = build_store(args.store, args.traces)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_ID": experiment_id}

    from mlflow import MlflowClient

    from analyze_experiment.agent.core.insights.models import Census, Evidence
    from analyze_experiment.agent.core.insights.service import Insights
    from analyze_experiment.agent.core.traces.access import TraceAccess

    client = MlflowClient(uri)
    trace_id = client.search_traces(locations=[experiment_id], max_results=1, include_spans=False)[0].info.trace_id
    ours = [sys.executable, "-m", "analyze_experiment"]
    theirs = [sys.executable, "-m", "mlflow", "traces"]
    rows: list[tuple[str, float, float | None]] = []
    rows.append(("--help (process)", wall([*ours, "--help"], env, args.repeat), None))
    rows.append(
        (
            "traces search --max-results 100 (process)",
            wall([*ours, "traces", "search", "--max-results", "100"], env, args.repeat),
            wall([*theirs, "search", "--experiment-id", experiment_id, "--max-results", "100"], env, args.repeat),
        )
    )
    rows.append(
        (
            "traces get (process)",
            wall([*ours, "traces", "get", "--trace-id", trace_id, "-o", "json"], env, args.repeat),
            wall([*theirs, "get", "--trace-id", trace_id], env, args.repeat),
        )
    )

    insights = Insights(client)
    run_id = insights.create_analysis(experiment_id, "benchmark").run_id
    insights.save_census(run_id, Census(trace_count=args.traces, ok_count=0, error_count=0, error_rate=0))
    counter = iter(range(10**6))
    rows.append(
        (
            "create hypothesis (in-process)",
            in_process(
                lambda: insights.create_hypothesis(
                    run_id, statement=f"claim {next(counter)}", rationale="r", testing_plan="p"
                ),
                args.repeat * 3,
            ),
            None,
        )
    )
    evidence = Evidence(trace_id=trace_id, rationale="seen", supports=True)
    rows.append(
        (
            "update hypothesis with evidence (in-process)",
            in_process(lambda: insights.update_hypothesis(run_id, "H1", evidence=[evidence]), args.repeat * 3),
            None,
        )
    )
    access = TraceAccess(client)
    rows.append(
        (
            "search 100 traces + link them (in-process)",
            in_process(lambda: access.search(experiment_id, max_results=100, link_to_run=run_id), args.repeat),
            None,
        )
    )

    print(f"\n{args.traces} traces, SQLite store, median of {args.repeat}+ runs\n")
    print(f"{'measure':48} {'ours':>9} {'mlflow':>9} {'ratio':>7}")
    for name, ours_s, theirs_s in rows:
        ratio = f"{theirs_s / ours_s:.1f}x" if theirs_s else ""
        other = f"{theirs_s:.2f}s" if theirs_s else ""
        print(f"{name:48} {ours_s:8.3f}s {other:>9} {ratio:>7}")


if __name__ == "__main__":
    main()
