"""Processes on one home share an experiment's cached traces table: readers never block a sync, two
syncs never collide, and every reader sees the new traces once a sync is done."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.helpers import cli_popen, cli_process, json_of

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

COUNT_SQL = "SELECT count(*) AS n FROM traces"

# A reader that keeps a query's connection open (a long query in another process's sandbox) until told.
HOLDING_READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
cursor = con.execute("SELECT trace_id FROM traces")
print(len(cursor.fetchmany(1)) + len(cursor.fetchall()), flush=True)
sys.stdin.readline()
print(con.execute("SELECT count(*) FROM traces").fetchone()[0], flush=True)
con.close()
with duckdb.connect(sys.argv[1], read_only=True) as fresh:
    print(fresh.execute("SELECT count(*) FROM traces").fetchone()[0], flush=True)
"""


def count_of(done: subprocess.CompletedProcess[str]) -> int:
    return int(json_of(done)["result"]["rows"][0][0])


def test_readers_and_syncing_writers_share_one_cache(store: Store, tmp_path: Path) -> None:
    from analyze_experiment.agent.simulation.scenarios import log_scenario

    home = tmp_path / "home"
    query = ("traces", "execute-sql", "--experiment-id", store.experiment_id, "--sql", COUNT_SQL, "-o", "json")
    assert count_of(cli_process(store.uri, home, *query, timeout=120)) == 40
    (cached,) = (home / "cache" / "traces").glob("*.duckdb")
    log_scenario(store.client(), store.experiment_id, "support", 3, seed=99, start_ns=1_790_000_000 * 10**9)

    reader = subprocess.Popen(
        [sys.executable, "-c", HOLDING_READER, str(cached)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdin is not None
    try:
        assert reader.stdout.readline().strip() == "40"  # its connection is open from here on
        # both sync the new traces (one waits for the other) while the reader holds the old table
        syncing = [cli_popen(store.uri, home, *query) for _ in range(2)]
        for process in syncing:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err[-3000:]
            assert count_of(subprocess.CompletedProcess(process.args, 0, out, err)) == 43
        reader.stdin.write("go\n")
        reader.stdin.flush()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err[-3000:]
    assert out.split() == ["40", "43"]  # its open connection kept its snapshot; a new one sees the sync
    assert count_of(cli_process(store.uri, home, *query, timeout=120)) == 43
