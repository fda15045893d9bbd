"""A separate process that updates hypotheses, for the concurrency tests.

Usage: python -m tests.workers URI RUN_ID HYPOTHESIS_ID TRACE_ID...
Prints "ready", waits for a line on stdin (so that racing workers start together), then adds one
evidence entry per trace id, rereading and retrying when it loses a race. Prints the JSON summary.
"""

from __future__ import annotations

import json
import os
import sys

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


def main(argv: list[str]) -> None:
    from mlflow import MlflowClient

    from analyze_experiment.agent.core.errors import StaleWriteError
    from analyze_experiment.agent.core.insights.models import Evidence
    from analyze_experiment.agent.core.insights.service import Insights

    uri, run_id, hypothesis_id, *trace_ids = argv
    insights = Insights(MlflowClient(uri))
    insights.get_hypothesis(run_id, hypothesis_id)  # warm up: imports, connection, schema check
    print("ready", flush=True)
    sys.stdin.readline()
    stale = 0
    for trace_id in trace_ids:
        entry = Evidence(trace_id=trace_id, rationale=f"seen by {os.getpid()}", supports=True)
        while True:
            try:
                insights.update_hypothesis(run_id, hypothesis_id, evidence=[entry])
                break
            except StaleWriteError:
                stale += 1
    print(json.dumps({"written": len(trace_ids), "stale": stale}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
