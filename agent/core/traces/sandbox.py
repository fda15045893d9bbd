"""Worker processes that run DuckDB queries for the analysis, so no query can hurt the process that
holds the analysis.

DuckDB's own limits are not enough for SQL written by a model or a stranger: functions like
`repeat('x', 2e9)` or `sequence(1, 1e8)` allocate outside its memory limit (4 GB and 7 GB of RSS in
our tests) and do not check for interrupts, so a timer cannot stop them. Each worker caps its heap
(RLIMIT_DATA) and is killed when a query overruns its deadline by `GRACE_S`; a fresh one takes its
place on the next query. Workers get no secrets in their environment and exit with their parent.
"""

from __future__ import annotations

import atexit
import os
import select
import subprocess
import sys
import threading
from typing import Any

from analyze_experiment.agent.core.traces.worker import receive, send

GRACE_S = 5.0
POOL_SIZE = 2
_KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


class _Worker:
    def __init__(self, heap_bytes: int) -> None:
        env = {name: os.environ[name] for name in _KEPT_ENV if name in os.environ}
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "analyze_experiment.agent.core.traces.worker", str(heap_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def ask(self, request: dict[str, Any], wait_s: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            send(self.process.stdin, request)
            ready, _, _ = select.select([self.process.stdout], [], [], wait_s)
            if not ready:
                self.kill()
                return {"error": "timeout"}
            reply: dict[str, Any] = receive(self.process.stdout)
            return reply
        except (EOFError, OSError):
            self.kill()
            return {"error": "died"}

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class SqlSandbox:
    """Up to `size` workers with the same heap cap; a caller waits for a free one."""

    def __init__(self, heap_bytes: int, size: int = POOL_SIZE, grace_s: float = GRACE_S) -> None:
        self.heap_bytes = heap_bytes
        self.grace_s = grace_s
        self._free = threading.Semaphore(size)
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def run(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        with self._free:
            worker = self._checkout()
            try:
                return worker.ask(request, timeout_s + self.grace_s)
            finally:
                with self._lock:
                    if worker.alive:
                        self._idle.append(worker)
                    else:
                        self._all.remove(worker)

    @property
    def workers(self) -> int:
        return len(self._all)

    def close(self) -> None:
        with self._lock:
            for worker in self._all:
                worker.kill()
            self._all.clear()
            self._idle.clear()

    def _checkout(self) -> _Worker:
        with self._lock:
            while self._idle:
                idle = self._idle.pop()
                if idle.alive:
                    return idle
                self._all.remove(idle)  # died while idle (killed from outside): start a fresh one
            worker = _Worker(self.heap_bytes)
            self._all.append(worker)
            return worker


_pools: dict[int, SqlSandbox] = {}
_pools_lock = threading.Lock()


def sandbox(heap_bytes: int) -> SqlSandbox:
    """The process's pool for this heap cap, started on first use and stopped at exit."""
    with _pools_lock:
        if heap_bytes not in _pools:
            _pools[heap_bytes] = SqlSandbox(heap_bytes)
        return _pools[heap_bytes]


@atexit.register
def _stop_all() -> None:
    for pool in list(_pools.values()):
        pool.close()
