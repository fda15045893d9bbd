"""Benchmark the traces table: census time and peak memory at 10k, 100k and 1M traces x 6 spans, and
materialisation from a real MLflow store against a plain `mlflow.search_traces` read (the floor).

    uv run python evals/bench_traces_table.py [--sizes 10000,100000,1000000] [--store DIR] [--resync-store DIR]

Synthetic tables are generated inside DuckDB (the same schema, column for column), each size in its own
process so peak memory (max RSS) is that size's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")
ROOT = Path(__file__).resolve().parents[1]
SPAN_NAMES = "['agent', 'retrieve', 'rerank', 'search_tool', 'book_tool', 'chat_model']"

GENERATE = f"""
CREATE TABLE traces AS
SELECT
  'tr-' || i AS trace_id, NULL::VARCHAR AS client_request_id,
  TIMESTAMP '2026-01-01' + to_milliseconds(i * 600) AS request_time,
  CASE WHEN i % 17 = 0 THEN 'ERROR' ELSE 'OK' END AS state,
  (200 + (hash(i) % 5000))::BIGINT AS execution_duration_ms,
  '{{"question": "question ' || i || '"}}' AS request,
  CASE WHEN i % 23 = 0 THEN '{{"answer": "I am sorry, I am not sure"}}' ELSE '{{"answer": "' || repeat('x', (i % 300)::INT) || '"}}' END AS response,
  NULL::VARCHAR AS request_preview, NULL::VARCHAR AS response_preview,
  MAP {{'mlflow.trace.user': 'user-' || (i % 100)}} AS trace_metadata,
  MAP {{'mlflow.traceName': 'agent', 'app_version': CASE WHEN i % 2 = 0 THEN '1.0' ELSE '1.1' END}} AS tags,
  {{'type': 'MLFLOW_EXPERIMENT', 'mlflow_experiment': {{'experiment_id': '1'}}}} AS trace_location,
  list_transform(range(6), lambda k: {{
    'name': {SPAN_NAMES}[k + 1], 'span_id': i || '-' || k, 'trace_id': 'tr-' || i,
    'parent_id': CASE WHEN k = 0 THEN NULL ELSE i || '-0' END,
    'start_time': TIMESTAMP '2026-01-01' + to_milliseconds(i * 600 + k * 10),
    'end_time': TIMESTAMP '2026-01-01' + to_milliseconds(i * 600 + k * 10 + 5 + (hash(i * 7 + k) % 900)),
    'status_code': CASE WHEN i % 17 = 0 AND k IN (0, 3) THEN 'ERROR' ELSE 'OK' END,
    'status_message': CASE WHEN i % 17 = 0 AND k = 3 THEN 'search_tool timed out after 10s' ELSE NULL END,
    'attributes': MAP {{'mlflow.spanType': CASE WHEN k IN (3, 4) THEN '"TOOL"' WHEN k = 5 THEN '"CHAT_MODEL"' ELSE '"CHAIN"' END}},
    'events': []::STRUCT(name VARCHAR, "timestamp" TIMESTAMP, attributes MAP(VARCHAR, VARCHAR))[]
  }}) AS spans,
  CASE WHEN i % 5 = 0 THEN [{{'assessment_id': 'a' || i, 'name': 'thumbs', 'source': {{'source_type': 'HUMAN', 'source_id': 'u'}},
    'feedback': {{'value': CASE WHEN i % 3 = 0 THEN 'false' ELSE 'true' END, 'error': NULL::VARCHAR}},
    'expectation': NULL::STRUCT(value VARCHAR), 'rationale': 'r', 'metadata': MAP {{}}::MAP(VARCHAR, VARCHAR), 'span_id': NULL::VARCHAR}}]
  ELSE [] END AS assessments
FROM range({{n}}) t(i)
"""


def census_child(size: int) -> None:
    """Runs in its own process: build a table of `size` traces, time the census, report peak RSS."""
    from analyze_experiment.agent.core.traces.census import compute_census
    from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
    from analyze_experiment.agent.core.traces.sync import writable

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.duckdb"
        started = time.perf_counter()
        with writable(path) as con:  # in the row groups a sync writes
            con.execute(GENERATE.replace("{n}", str(size)))
            con.execute("CHECKPOINT cache")
        built = time.perf_counter() - started
        engine = DuckDBEngine(path, memory_limit="3GB", timeout_s=600)
        started = time.perf_counter()
        census = compute_census(
            engine, discovery=False
        )  # the 14 baseline queries; evals/bench_discovery.py times the scan
        elapsed = time.perf_counter() - started
        assert census.trace_count == size
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"size": size, "build_s": built, "census_s": elapsed, "peak_mb": peak_mb}))


def materialise(store: Path) -> dict[str, float]:
    import mlflow
    from mlflow import MlflowClient

    from analyze_experiment.agent.core.traces.sync import TraceTableSync

    experiment_id = json.loads((store / "experiment.json").read_text())["experiment_id"]
    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    started = time.perf_counter()
    plain = mlflow.search_traces(locations=[experiment_id], return_type="list", max_results=100_000)
    floor = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        table = TraceTableSync(MlflowClient(uri), experiment_id, Path(tmp) / "t.duckdb")
        started = time.perf_counter()
        report = table.sync()
        full = time.perf_counter() - started
        started = time.perf_counter()
        table.sync()
        resync = time.perf_counter() - started
    return {
        "traces": report.total,
        "plain_read_s": floor,
        "materialise_s": full,
        "resync_s": resync,
        "plain_count": len(plain),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--store", type=Path, default=ROOT / "bench-results" / "store-2000")
    parser.add_argument("--resync-store", type=Path, default=ROOT / "bench-results" / "store-10000")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        census_child(args.child)
        return
    print(f"{'traces':>10} {'census':>9} {'peak RSS':>10}   (table generated in)")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size)], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(f"{size:>10,} {row['census_s']:>8.2f}s {row['peak_mb']:>8.0f}MB   ({row['build_s']:.1f}s)")
    for store in (args.store, args.resync_store):
        if (store / "experiment.json").exists():
            m = materialise(store)
            print(
                f"\nstore of {m['traces']:,} traces: plain mlflow.search_traces {m['plain_read_s']:.2f}s, "
                f"materialise {m['materialise_s']:.2f}s ({m['materialise_s'] / m['plain_read_s']:.2f}x), "
                f"re-sync unchanged {m['resync_s']:.2f}s"
            )
        else:
            print(f"\n(no store at {store}; build one with evals/bench_insights.py --store {store} --traces N)")


if __name__ == "__main__":
    main()
