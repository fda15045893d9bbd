"""Benchmark: how fast the simulator logs traces into a fresh SQLite store, and that none are lost.

uv run python evals/bench_simulator.py [--traces 500,2000] [--scenario support]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", default="500,2000")
    parser.add_argument("--scenario", default="support")
    args = parser.parse_args()
    from mlflow import MlflowClient

    from analyze_experiment.agent.simulation.scenarios import log_scenario

    print(f"{'traces':>8} {'seconds':>8} {'traces/s':>9}  stored")
    for count in (int(n) for n in args.traces.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            client = MlflowClient(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
            experiment_id = client.create_experiment("bench", artifact_location=str(Path(tmp) / "artifacts"))
            started = time.perf_counter()
            log_scenario(client, experiment_id, args.scenario, count, seed=1)
            elapsed = time.perf_counter() - started
            stored = len(client.search_traces(locations=[experiment_id], max_results=count + 1, include_spans=False))
        print(
            f"{count:>8,} {elapsed:>8.2f} {count / elapsed:>9.0f}  {stored:,}{'' if stored == count else ' LOST TRACES'}"
        )


if __name__ == "__main__":
    main()
