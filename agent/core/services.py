"""The services an analysis stands on, built from settings: the MLflow client, the insights library,
trace access and the traces table. The front ends reach them through the session layer.

Everything heavy (MLflow) is created on first use, so commands that do not touch the store stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from analyze_experiment.agent.core.errors import ConfigurationError, NotFoundError
from analyze_experiment.agent.core.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from analyze_experiment.agent.core.insights.service import Insights
    from analyze_experiment.agent.core.traces.access import TraceAccess
    from analyze_experiment.agent.core.traces.engine import SqlEngine


class Services:
    def __init__(self, settings: Settings, notify: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self._notify = notify or (lambda _message: None)
        self._told: set[str] = set()

    def notify_once(self, message: str) -> None:
        if message not in self._told:
            self._told.add(message)
            self._notify(message)

    @cached_property
    def client(self) -> MlflowClient:
        from analyze_experiment.agent.core.tracking import connect

        return connect(self.settings)

    @cached_property
    def insights(self) -> Insights:
        from analyze_experiment.agent.core.insights.service import Insights

        return Insights(self.client, notify=self.notify_once)

    @cached_property
    def traces(self) -> TraceAccess:
        from analyze_experiment.agent.core.traces.access import TraceAccess

        return TraceAccess(self.client)

    def traces_table(
        self,
        experiment_id: str,
        refresh: bool = False,
        on_traces: Callable[[int], None] | None = None,
        engine: str | None = None,
        table_name: str | None = None,
    ) -> SqlEngine:
        """The experiment's traces table: on Databricks the real one, elsewhere a synced local copy."""
        chosen = engine or ("databricks" if self.settings.is_databricks else "duckdb")
        if chosen == "databricks":
            from analyze_experiment.agent.core.traces.databricks_engine import DatabricksEngine

            return DatabricksEngine(
                self.settings, table_name or self.settings.trace_table_name, self.settings.databricks_warehouse_id
            )
        from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
        from analyze_experiment.agent.core.traces.sync import TraceTableSync, cache_path

        path = cache_path(self.settings.home / "cache", self.settings.tracking_uri, experiment_id)
        report = TraceTableSync(self.client, experiment_id, path).sync(refresh=refresh, on_traces=on_traces)
        if chosen == "spark":
            from analyze_experiment.agent.core.traces.spark_engine import SparkEngine, export_parquet

            parquet = path.with_suffix(".parquet")
            if report.changed or not parquet.exists():  # an unchanged table keeps its export
                export_parquet(path, parquet)
            return SparkEngine(parquet)
        return DuckDBEngine(path)

    def experiment_id(self, explicit: str | None = None) -> str:
        """The experiment asked for, once the store confirms it exists (and is not deleted)."""
        experiment_id = explicit or self.settings.experiment_id
        if not experiment_id:
            raise ConfigurationError("no experiment given; pass --experiment-id or set MLFLOW_EXPERIMENT_ID")
        from mlflow.exceptions import MlflowException

        from analyze_experiment.agent.core.tracking import retry_transient

        missing = NotFoundError(
            f"no experiment {experiment_id} in {self.settings.display_uri()}; "
            "`analyze-experiment doctor` lists the experiments there"
        )
        try:
            experiment = retry_transient(self.client.get_experiment)(experiment_id)
        except MlflowException as error:
            if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"}:
                raise missing from error
            raise
        if experiment.lifecycle_stage != "active":
            raise missing
        return experiment_id

    def run_link(self, run_id: str, experiment_id: str | None = None) -> str | None:
        """The run in MLflow's UI, when the tracking store is a server that has one."""
        uri = self.settings.tracking_uri
        if not uri.startswith(("http://", "https://")):
            return None
        from analyze_experiment.agent.core.tracking import retry_transient

        experiment = experiment_id or retry_transient(self.client.get_run)(run_id).info.experiment_id
        return f"{uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"

    def redact(self, text: str) -> str:
        """Remove every secret we know of from text about to be shown or stored."""
        from analyze_experiment.agent.core.redaction import redact

        s = self.settings
        # Not the MLflow username: an identity, not a secret, and replacing a short name everywhere would mangle text.
        secrets = [
            s.databricks_token,
            s.openai_api_key,
            s.slack_bot_token,
            s.slack_signing_secret,
            s.slack_app_token,
            s.mlflow_tracking_password,
            s.mlflow_tracking_token,
        ]
        return redact(text, [secret.get_secret_value() for secret in secrets if secret])
