"""What every command shares: the services built from the global options, `--output`, JSON option parsing.

Kept free of MLflow and rich imports so `--help` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from analyze_experiment.agent.core.errors import UserError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from analyze_experiment.agent.core.services import Services
    from analyze_experiment.agent.core.traces.engine import SqlEngine

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound="BaseModel")


@dataclass
class CliState:
    env_file: Path | None = None
    tracking_uri: str | None = None
    debug: bool = False
    json_output: bool = False
    services: Services | None = field(default=None)


def state() -> CliState:
    obj = click.get_current_context().find_root().obj
    assert isinstance(obj, CliState)
    return obj


def current_services() -> Services:
    current = state()
    if current.services is None:
        from analyze_experiment.agent.app.console import notice
        from analyze_experiment.agent.core.services import Services
        from analyze_experiment.agent.core.settings import load_settings

        settings = load_settings(env_file=current.env_file, tracking_uri=current.tracking_uri)
        current.services = Services(settings, notify=notice)
    return current.services


def output_option(func: F) -> F:
    def remember(ctx: click.Context, _param: click.Parameter, value: str) -> str:
        if value == "json" and isinstance(ctx.find_root().obj, CliState):
            ctx.find_root().obj.json_output = True
        return value

    return click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        callback=remember,
        is_eager=True,
        help="table for people; json (documented, stable) for scripts and agents.",
    )(func)


def experiment_option(func: F) -> F:
    return click.option("--experiment-id", "-x", help="Experiment to work on. [default: $MLFLOW_EXPERIMENT_ID]")(func)


def run_id_option(help_text: str = "The analysis run id.", required: bool = True) -> Callable[[F], F]:
    return click.option("--run-id", "-r", required=required, help=help_text)


def parse_json_items(values: tuple[str, ...], model: type[M], option: str, example: str) -> list[M]:
    """Each value is one JSON object or a list of them, validated against `model`."""
    from pydantic import ValidationError

    items: list[M] = []
    for raw in values:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise UserError(f"{option} is not valid JSON ({error.msg}); expected {example}") from error
        for entry in data if isinstance(data, list) else [data]:
            try:
                items.append(model.model_validate(entry))
            except ValidationError as error:
                problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors())
                raise UserError(f"{option} is invalid ({problem}); expected {example}") from error
    return items


EVIDENCE_EXAMPLE = '\'{"trace_id": "tr-...", "rationale": "...", "supports": true}\''
SQL_EXAMPLE = '\'{"id": "Q1", "query": "SELECT ...", "result_summary": "..."}\''


class UpperChoice(click.Choice):  # type: ignore[type-arg]
    """Case-insensitive choice that shows and returns the canonical upper-case values."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(str(value).upper(), param, ctx)


def engine_options(func: F) -> F:
    func = click.option(
        "--table-name", help="Databricks trace table, catalog.schema.table. [default: $MLFLOW_TRACE_TABLE_NAME]"
    )(func)
    return click.option(
        "--engine",
        type=click.Choice(["duckdb", "spark", "databricks"]),
        help="Where SQL runs. [default: databricks for a Databricks tracking URI, else duckdb]",
    )(func)


def traces_table(experiment_id: str, refresh: bool, engine: str | None, table_name: str | None) -> SqlEngine:
    """The experiment's traces table, synced first with a progress display on stderr."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from analyze_experiment.agent.app import console

    columns = (
        SpinnerColumn(),
        TextColumn("syncing the traces table: {task.completed} traces read"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console.err, transient=True) as progress:
        task = progress.add_task("sync", total=None)
        return current_services().traces_table(
            experiment_id, refresh, lambda n: progress.advance(task, n), engine, table_name
        )
