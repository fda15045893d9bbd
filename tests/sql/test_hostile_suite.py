"""The generated hostile SQL suite (evals/hostile_sql.py) against the real sandbox: nothing read,
written or fetched outside the traces table, every query answered with a one-line refusal, a
timeout or a capped result, and the process as healthy afterwards as before."""

from __future__ import annotations

import os
import resource
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from analyze_experiment.agent.core.traces.engine import QueryResult
from analyze_experiment.agent.core.traces.worker import MAX_CELL_CHARS, MAX_CELL_ITEMS
from analyze_experiment.evals.hostile_sql import HEAVY, generate
from tests.sql.fixture_table import build

SECRET = "top-secret-line"
ENV_SECRET = "env-secret-" + "z" * 12
ROW_CAP = 3


class Trap:
    """A TCP listener on 127.0.0.1 that counts connections: any would be a query reaching out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    listener = Trap()
    yield listener
    listener.sock.close()


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _check_answer(category: str, query: str, engine: DuckDBEngine) -> str:
    try:
        result = engine.execute(query)
    except UserError as refused:
        assert len(refused.message.splitlines()) == 1, query
        assert SECRET not in refused.message and ENV_SECRET not in refused.message, query
        return type(refused).__name__
    assert category == HEAVY, f"ran: {query!r} -> {result.rows}"
    _check_capped(result, query)
    return "capped"


def _check_capped(result: QueryResult, query: str) -> None:
    assert result.row_count <= ROW_CAP, query
    for row in result.rows:
        for cell in row:
            if isinstance(cell, str):
                assert len(cell) <= MAX_CELL_CHARS + 100 and SECRET not in cell, query
            if isinstance(cell, list):
                assert len(cell) <= MAX_CELL_ITEMS + 1, query


@pytest.mark.slow
def test_generated_hostile_sql_never_escapes_and_the_process_stays_healthy(
    tmp_path: Path, trap: Trap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTILE_SECRET", ENV_SECRET)
    build(tmp_path / "traces.duckdb")
    (tmp_path / "secret.txt").write_text(f"{SECRET}\n")
    engine = DuckDBEngine(tmp_path / "traces.duckdb", timeout_s=1.0, row_cap=ROW_CAP, memory_limit="256MB")
    before = engine.execute("SELECT trace_id, state, request FROM traces ORDER BY trace_id")
    files, fds, threads = _files(tmp_path), _fds(), threading.active_count()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    suite = generate(tmp_path / "secret.txt", trap.url, tmp_path)
    assert len(suite) >= 1000
    answers = Counter((category, _check_answer(category, query, engine)) for category, query in suite)
    print(f"{len(suite)} hostile queries:", dict(sorted(answers.items())))

    assert trap.connections == 0
    assert _files(tmp_path) == files  # nothing written: no COPY, EXPORT, ATTACH or spill files left
    assert engine.execute("SELECT trace_id, state, request FROM traces ORDER BY trace_id").rows == before.rows
    assert _fds() <= fds + 4 and threading.active_count() <= threads + 1  # at most the sandbox's workers' pipes
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 200, f"the test process grew by {grown_mb:.0f} MB"
    heavy = {answer for (category, answer) in answers if category == HEAVY}
    assert {"SqlTimeout", "SqlRefused", "capped"} <= heavy


def test_a_worker_past_its_deadline_is_killed_and_replaced(tmp_path: Path) -> None:
    """Below the SQL checks: a query DuckDB cannot interrupt is ended by killing its worker, and a query
    needing more memory than the worker's cap fails cleanly; the next query is answered as usual."""
    from analyze_experiment.agent.core.traces import sandbox as sandboxes

    build(tmp_path / "traces.duckdb")
    engine = DuckDBEngine(tmp_path / "traces.duckdb", memory_limit="256MB")
    pool = sandboxes.SqlSandbox(engine.heap_bytes, grace_s=0)
    request = {"path": str(engine.path), "config": engine._config, "row_cap": 3, "timeout_s": 60}
    endless = (
        "SELECT count(*) FROM traces a, traces b, traces c, traces d, traces e, traces f, traces g, traces h, "
        "traces i WHERE md5(a.trace_id || i.trace_id) LIKE '%zzzz%'"
    )
    assert pool.run({**request, "sql": endless}, timeout_s=0) == {"error": "timeout"}
    assert pool.workers == 0  # killed, not left running
    huge = pool.run({**request, "sql": "SELECT length(repeat('x', 4000000000))"}, timeout_s=60)
    assert huge["error"] == "failed" and "memory" in huge["message"].lower()
    assert pool.run({**request, "sql": "SELECT count(*) FROM traces"}, timeout_s=60)["rows"] == [[6]]
    assert pool.workers == 1
    for worker in list(pool._all):  # a worker killed from outside while idle is replaced, not asked
        worker.process.kill()
        worker.process.wait()
    assert pool.run({**request, "sql": "SELECT count(*) FROM traces"}, timeout_s=60)["rows"] == [[6]]
    pool.close()
