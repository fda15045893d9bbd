"""Running checked SQL over the traces table on a locked-down DuckDB connection.

`read_only` is not a sandbox (DuckDB can still read and write files through functions), so the
connection also turns off external access and extension loading, caps memory and threads, and locks
that configuration before any user SQL runs. DuckDB has no statement timeout: a timer interrupts.
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.agent.core.traces.engine import DEFAULT_ROW_CAP, DEFAULT_TIMEOUT_S, QueryResult, SqlTimeout
from analyze_experiment.agent.core.traces.sql import SqlRefused, to_duckdb
from analyze_experiment.agent.core.traces.text import clean

WORKER_OVERHEAD_BYTES = 1 << 30


class DuckDBEngine:
    name = "duckdb"

    def __init__(
        self,
        path: Path,
        *,
        memory_limit: str = "2GB",
        threads: int = 2,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        row_cap: int = DEFAULT_ROW_CAP,
    ) -> None:
        self.path = path
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "enable_external_access": "false",
            "autoload_known_extensions": "false",
            "autoinstall_known_extensions": "false",
            "allow_community_extensions": "false",
            "memory_limit": memory_limit,
            "threads": str(threads),
            "lock_configuration": "true",
        }
        # the worker's heap: DuckDB's buffer pool plus what lives outside it (Python, results)
        self.heap_bytes = _bytes(memory_limit) + WORKER_OVERHEAD_BYTES
        self.timeout_s = timeout_s
        self.row_cap = row_cap

    def execute(self, sql: str) -> QueryResult:
        from analyze_experiment.agent.core.traces.sandbox import sandbox

        translated = to_duckdb(sql)
        request = {
            "path": str(self.path),
            "config": self._config,
            "sql": translated,
            "row_cap": self.row_cap,
            "timeout_s": self.timeout_s,
        }
        reply = sandbox(self.heap_bytes).run(request, self.timeout_s)
        if "error" in reply:
            raise self._explain(reply, translated)
        return QueryResult(
            columns=reply["columns"],
            rows=clean(reply["rows"]),
            row_count=len(reply["rows"]),
            rows_cut=reply["rows_cut"],
            engine=self.name,
            executed_sql=translated,
        )

    @contextmanager
    def derived(self, sql: str) -> Iterator[DuckDBEngine]:
        """The rows in a scratch database, written by a sandbox worker under the query's own lockdown."""
        from analyze_experiment.agent.core.traces.sandbox import sandbox

        translated = to_duckdb(sql)
        with tempfile.TemporaryDirectory(prefix="analyze-experiment-") as scratch:
            target = Path(scratch) / "derived.duckdb"
            request = {
                "derive": {
                    "path": str(self.path),
                    "target": str(target),
                    "config": self._config,
                    "sql": translated,
                    "timeout_s": self.timeout_s,
                }
            }
            reply = sandbox(self.heap_bytes).run(request, self.timeout_s)
            if "error" in reply:
                raise self._explain(reply, translated)
            engine = copy.copy(self)
            engine.path = target
            yield engine

    def _explain(self, reply: dict[str, Any], translated: str) -> UserError:
        kind, message = reply["error"], reply.get("message", "")
        if kind == "timeout":
            return SqlTimeout(
                f"the query was stopped after {self.timeout_s:g} s; narrow it (a WHERE on "
                "request_time, fewer rows) or raise --timeout"
            )
        if kind == "permission":
            return SqlRefused(f"not allowed in the sandbox: {message}")
        if kind == "died":
            return UserError(f"the query needed more than {self.heap_bytes // 2**20:,} MB and was stopped; narrow it")
        return UserError(f"the query failed: {message} (ran on DuckDB as: {translated[:300]})")


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?i?B)\s*", size, re.IGNORECASE).groups()  # type: ignore[union-attr]
    return int(float(number) * 1024 ** "BKMGT".index(unit[0].upper()))
