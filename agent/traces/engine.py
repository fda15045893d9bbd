"""Running checked SQL over the traces table on a locked-down DuckDB connection.

`read_only` is not a sandbox (DuckDB can still read and write files through functions), so the
connection also turns off external access and extension loading, caps memory and threads, and locks
that configuration before any user SQL runs. DuckDB has no statement timeout: a timer interrupts.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

import duckdb
from pydantic import BaseModel

from agent.errors import UserError
from agent.traces.sql import SqlRefused, to_duckdb

DEFAULT_ROW_CAP = 1000
TRACE_COLUMN = "trace_id"
DEFAULT_TIMEOUT_S = 30.0
_COUNT_BATCH = 10_000


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    rows_cut: int
    engine: str
    executed_sql: str

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def trace_ids(self, first_column_fallback: bool = False) -> list[str]:
        """Distinct values of the `trace_id` column, in result order (or of the first column, if asked)."""
        if TRACE_COLUMN in self.columns:
            column = self.columns.index(TRACE_COLUMN)
        elif first_column_fallback and self.columns:
            column = 0
        else:
            return []
        return list(dict.fromkeys(str(row[column]) for row in self.rows if row[column]))


class SqlTimeout(UserError):
    kind = "sql_timeout"


class SqlEngine(Protocol):
    """What the census, the CLI and the graph's SQL tool need of an engine."""

    name: str
    row_cap: int
    timeout_s: float

    def execute(self, sql: str) -> QueryResult: ...


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
        self.timeout_s = timeout_s
        self.row_cap = row_cap

    def execute(self, sql: str) -> QueryResult:
        translated = to_duckdb(sql)
        with duckdb.connect(str(self.path), read_only=True, config=self._config) as con:
            timer = threading.Timer(self.timeout_s, con.interrupt)
            timer.start()
            try:
                cursor = con.execute(translated)
                columns = [d[0] for d in cursor.description or []]
                rows = cursor.fetchmany(self.row_cap)
                cut = _count_rest(cursor)
            except duckdb.InterruptException as error:
                raise SqlTimeout(f"the query was stopped after {self.timeout_s:g} s; narrow it (a WHERE on "
                                 "request_time, fewer rows) or raise --timeout") from error  # fmt: skip
            except duckdb.Error as error:
                raise _explain(error, translated) from error
            finally:
                timer.cancel()
        return QueryResult(columns=columns, rows=[[json_safe(v) for v in row] for row in rows], row_count=len(rows),
                           rows_cut=cut, engine=self.name, executed_sql=translated)  # fmt: skip


def _count_rest(cursor: duckdb.DuckDBPyConnection) -> int:
    cut = 0
    while batch := cursor.fetchmany(_COUNT_BATCH):
        cut += len(batch)
    return cut


def _explain(error: duckdb.Error, translated: str) -> UserError:
    first = str(error).strip().splitlines()[0]
    if isinstance(error, duckdb.PermissionException):
        return SqlRefused(f"not allowed in the sandbox: {first}")
    return UserError(f"the query failed: {first} (ran on DuckDB as: {translated[:300]})")


def json_safe(value: Any) -> Any:
    """JSON-safe Python values, keeping structure (lists, maps as dicts, structs as dicts)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | bytes):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return value
