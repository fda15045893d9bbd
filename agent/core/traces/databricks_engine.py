"""Databricks: the traces table already exists there; queries go to it through a SQL warehouse.

Kept thin: the same checks as every engine, `traces` rewritten to the configured table name, and the
query sent with databricks-sql-connector (the `databricks` extra). Databricks' own API enforces access.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlparse

from sqlglot import exp

from analyze_experiment.agent.core.errors import ConfigurationError, UserError
from analyze_experiment.agent.core.settings import Settings
from analyze_experiment.agent.core.traces.engine import DEFAULT_ROW_CAP, DEFAULT_TIMEOUT_S, QueryResult, SqlTimeout
from analyze_experiment.agent.core.traces.sql import parse
from analyze_experiment.agent.core.traces.table import TABLE
from analyze_experiment.agent.core.traces.worker import bounded, json_safe

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")


def build_query(sql: str, table_name: str) -> str:
    """Check the query like any other, then point `traces` (not a CTE of that name) at the real table."""
    if not _TABLE_NAME.match(table_name):
        raise ConfigurationError(
            f"trace table name '{table_name}' must be catalog.schema.table; set --table-name or MLFLOW_TRACE_TABLE_NAME"
        )
    tree = parse(sql)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    catalog, schema, table = table_name.split(".")

    def point(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name.lower() == TABLE and TABLE not in ctes:
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(TABLE))
            return exp.Table(
                this=exp.to_identifier(table),
                db=exp.to_identifier(schema),
                catalog=exp.to_identifier(catalog),
                alias=alias,
            )
        return node

    return tree.transform(point).sql(dialect="databricks")


class DatabricksEngine:
    name = "databricks"

    def __init__(
        self,
        settings: Settings,
        table_name: str | None,
        warehouse_id: str | None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        row_cap: int = DEFAULT_ROW_CAP,
    ) -> None:
        if not table_name:
            raise ConfigurationError(
                "Databricks queries need the trace table: pass --table-name or set "
                "MLFLOW_TRACE_TABLE_NAME (catalog.schema.table)"
            )
        if not warehouse_id:
            raise ConfigurationError("Databricks queries need a SQL warehouse: set DATABRICKS_WAREHOUSE_ID")
        if not (settings.databricks_host and settings.databricks_token):
            raise ConfigurationError("Databricks SQL needs DATABRICKS_HOST and DATABRICKS_TOKEN")
        self._settings = settings
        self.table_name = table_name
        self.http_path = f"/sql/1.0/warehouses/{warehouse_id}"
        self.timeout_s = timeout_s
        self.row_cap = row_cap

    def execute(self, sql: str) -> QueryResult:
        query = build_query(sql, self.table_name)
        try:
            from databricks import sql as dbsql
        except ImportError as error:
            raise ConfigurationError(
                "Databricks SQL needs the extra: uv tool install 'analyze-experiment[databricks]'"
            ) from error
        address = urlparse(self._settings.databricks_host or "")
        host, port = address.hostname or "", address.port or 443
        token = self._settings.databricks_token.get_secret_value() if self._settings.databricks_token else ""
        stopped = threading.Event()
        try:
            with (
                dbsql.connect(
                    server_hostname=host,
                    _port=port,
                    http_path=self.http_path,
                    access_token=token,
                    _retry_stop_after_attempts_count=2,
                    _socket_timeout=self.timeout_s,
                ) as con,
                con.cursor() as cursor,
            ):

                def cancel() -> None:
                    stopped.set()
                    cursor.cancel()

                timer = threading.Timer(self.timeout_s, cancel)
                timer.start()
                try:
                    cursor.execute(query)
                    rows = cursor.fetchmany(self.row_cap + 1)
                    columns = [d[0] for d in cursor.description or []]
                    cut = len(rows) - self.row_cap + len(cursor.fetchall()) if len(rows) > self.row_cap else 0
                finally:
                    timer.cancel()
        except Exception as error:
            if stopped.is_set():
                raise SqlTimeout(f"the query was stopped after {self.timeout_s:g} s; narrow it") from error
            message = str(error).replace(token, "***") if token else str(error)
            raise UserError(
                f"Databricks SQL failed: {message.splitlines()[0][:300] if message else type(error).__name__}"
            ) from error
        kept: list[Any] = rows[: self.row_cap]
        return QueryResult(
            columns=columns,
            rows=[[bounded(json_safe(v)) for v in row] for row in kept],
            row_count=len(kept),
            rows_cut=cut,
            engine=self.name,
            executed_sql=query,
        )
