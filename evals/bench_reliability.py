"""Benchmark what the reliability tests prove, with figures for docs/RELIABILITY.md.

    uv run python evals/bench_reliability.py [--in-process] [--store-down]

- the generated hostile SQL suite against the sandbox: throughput, answers, this process's memory;
- value-building SQL that DuckDB cannot bound, run past the SQL checks straight into a sandbox worker
  (and, with --in-process, on a plain DuckDB connection in this process, as the tool used to: this
  takes 10-20 s and 4-7 GB);
- model endpoint faults through the real client and a local OpenAI-compatible server: time to recover;
- kill -9 in the middle of testing hypotheses, then resume, against an uninterrupted analysis;
- with --store-down, how long MLflow's own HTTP retries take to give up on a dead tracking server.

Run from the checkout: it borrows the tests' fixture table and local OpenAI server.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
AMPLIFIERS = ["SELECT length(repeat('x', 2000000000))", "SELECT len(sequence(1, 100000000))"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hostile_sql(root: Path) -> None:
    from analyze_experiment.agent.core.errors import UserError
    from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
    from analyze_experiment.evals.hostile_sql import generate
    from tests.sql.fixture_table import build

    build(root / "traces.duckdb")
    (root / "secret.txt").write_text("secret\n")
    engine = DuckDBEngine(root / "traces.duckdb", timeout_s=0.5, row_cap=3, memory_limit="256MB")
    engine.execute("SELECT 1")
    before = rss_mb()
    suite = generate(root / "secret.txt", "http://127.0.0.1:9", root)
    answers: Counter[str] = Counter()
    started = time.perf_counter()
    for _category, query in suite:
        try:
            engine.execute(query)
            answers["capped result"] += 1
        except UserError as refused:
            answers[type(refused).__name__] += 1
    wall = time.perf_counter() - started
    print(
        f"hostile SQL: {len(suite):,} queries in {wall:.1f} s ({len(suite) / wall:,.0f}/s); {dict(answers)}; "
        f"this process's peak RSS {before:.0f} -> {rss_mb():.0f} MB"
    )


def amplifiers(root: Path, in_process: bool) -> None:
    from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
    from analyze_experiment.agent.core.traces.sandbox import SqlSandbox

    engine = DuckDBEngine(root / "traces.duckdb", memory_limit="256MB", timeout_s=0.5)
    pool = SqlSandbox(engine.heap_bytes)
    for sql in AMPLIFIERS:
        before = rss_mb()
        started = time.perf_counter()
        reply = pool.run(
            {"path": str(engine.path), "config": engine._config, "sql": sql, "row_cap": 3, "timeout_s": 0.5},
            timeout_s=0.5,
        )
        outcome = reply.get("error") or "rows"
        print(
            f"sandbox worker, checks bypassed: {sql}: {outcome} in {time.perf_counter() - started:.2f} s; "
            f"this process {before:.0f} -> {rss_mb():.0f} MB"
        )
    pool.close()
    if in_process:
        import duckdb

        for sql in AMPLIFIERS:
            con = duckdb.connect(config={"memory_limit": "256MB"})
            started = time.perf_counter()
            con.execute(sql).fetchall()
            print(
                f"in-process DuckDB (256MB limit): {sql}: {time.perf_counter() - started:.2f} s, "
                f"peak RSS {rss_mb():.0f} MB"
            )


def model_faults() -> None:
    from langchain_core.messages import HumanMessage

    from analyze_experiment.agent.core.errors import AnalystError
    from analyze_experiment.agent.core.settings import load_settings
    from analyze_experiment.graphs.analysts.llm import chat_model, with_retries
    from tests.openai_server import Fault, openai_server

    cases: list[tuple[str, list[Fault]]] = [
        ("a burst of three 429s", [429, 429, 429]),
        ("three 500s", [500, 500, 503]),
        ("two timeouts (1 s client timeout)", ["timeout", "timeout"]),
        ("three dropped connections", ["drop"] * 3),
        ("500 four times: give up", [500] * 4),
        ("a context overflow: no retry", [400]),
    ]
    for name, faults in cases:
        with openai_server(faults) as (base_url, _server):
            settings = load_settings(
                {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench", "ANALYZE_EXPERIMENT_LLM_TIMEOUT": "1"}
            )
            model = chat_model("gpt-4o-mini", settings)
            started = time.perf_counter()
            try:
                with_retries(partial(model.invoke, [HumanMessage("hi")]))
                outcome = "answered"
            except AnalystError as failed:
                outcome = f"paused: {failed}"
        print(f"model endpoint, {name}: {outcome} after {time.perf_counter() - started:.2f} s")


def crash_recovery(root: Path) -> None:
    from mlflow import MlflowClient

    from analyze_experiment.agent.simulation.recordings import load_recording

    uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment_id = load_recording(MlflowClient(uri), "support")

    def cli(home: str, *args: str, failpoint: str = "") -> tuple[int, float]:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "ANALYZE_EXPERIMENT_HOME": str(root / home)}
        if failpoint:
            env["ANALYZE_EXPERIMENT_FAILPOINTS"] = f"{failpoint}=kill"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "analyze_experiment", *args, "--approve", "auto"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode, time.perf_counter() - started

    _, clean = cli("clean", "run", "--experiment-id", experiment_id)
    code, before_kill = cli(
        "crash", "run", "--experiment-id", experiment_id, failpoint="documents.claimed@test_hypothesis#7"
    )
    threads = [p.name for p in (root / "crash" / "locks").iterdir()]
    resumed_code, resumed = cli("crash", "resume", threads[0].removesuffix(".lock"))
    print(
        f"kill -9 while testing (exit {code}) after {before_kill:.1f} s; resume (exit {resumed_code}) "
        f"{resumed:.1f} s; together {before_kill + resumed:.1f} s against {clean:.1f} s uninterrupted"
    )


def store_down() -> None:
    from mlflow import MlflowClient

    started = time.perf_counter()
    try:
        MlflowClient("http://127.0.0.1:9").get_run("0" * 32)
    except Exception as error:  # noqa: BLE001 - any failure is the figure we want
        print(
            f"dead tracking server, MLflow's default HTTP retries: gave up after "
            f"{time.perf_counter() - started:.0f} s ({type(error).__name__})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-process", action="store_true", help="also run the amplifiers the old way")
    parser.add_argument("--store-down", action="store_true", help="measure MLflow's retries (minutes)")
    args: Any = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        root = Path(tmp)
        hostile_sql(root)
        amplifiers(root, args.in_process)
        model_faults()
        crash_recovery(root)
    if args.store_down:
        store_down()


if __name__ == "__main__":
    main()
