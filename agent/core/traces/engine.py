"""What every SQL engine over the traces table is to its callers: the protocol and its result.

The engines themselves live apart (`duckdb_engine`, `spark_engine`, `databricks_engine`), so code that
only reads results, graph code among it, never imports one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from analyze_experiment.agent.core.errors import UserError

DEFAULT_ROW_CAP = 1000
TRACE_COLUMN = "trace_id"
DEFAULT_TIMEOUT_S = 30.0


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


@runtime_checkable
class DerivingEngine(SqlEngine, Protocol):
    """An engine that can hold a query's rows as a table, for work that asks many questions of the same
    derived rows (the discovery engine's one row per trace). Engines without it get the query inlined."""

    def derived(self, sql: str) -> AbstractContextManager[SqlEngine]:
        """An engine whose `traces` table holds the rows `sql` selects, dropped on exit."""
        ...
