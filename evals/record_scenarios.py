"""Re-record the committed scenarios: generate each one, write it to a throwaway store, and save what
MLflow gives back (its own trace JSON) with the ground truth.

    uv run python evals/record_scenarios.py [--traces 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
RECORDING_EXPERIMENT = "recorded"
SEED = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=300)
    args = parser.parse_args()
    from mlflow import MlflowClient

    from analyze_experiment.agent.simulation.recordings import SCENARIO_ROOT, write_recording
    from analyze_experiment.agent.simulation.scenarios import SCENARIOS, generate
    from analyze_experiment.agent.simulation.writer import write_traces

    for name in sorted(SCENARIOS):
        run = generate(name, RECORDING_EXPERIMENT, args.traces, SEED)
        with tempfile.TemporaryDirectory() as tmp:
            client = MlflowClient(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
            experiment_id = client.create_experiment(name, artifact_location=str(Path(tmp) / "artifacts"))
            write_traces(client, experiment_id, run.traces)
            stored = client.search_traces(
                locations=[experiment_id], max_results=args.traces + 1, order_by=["timestamp_ms ASC"]
            )
            traces = [trace.to_dict() for trace in stored]
        write_recording(SCENARIO_ROOT / name, traces, run.expected())
        print(
            f"{name}: {len(traces)} traces, {sum(len(p['affected_trace_ids']) for p in run.expected()['problems'])} labels"
        )


if __name__ == "__main__":
    main()
