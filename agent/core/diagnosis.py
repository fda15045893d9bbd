"""What `doctor` finds out, as data: the store, the experiment, the traces, and what is wrong."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from analyze_experiment.agent.core.errors import NotFoundError
from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.traces.views import TraceSummary, summarize
from analyze_experiment.agent.core.tracking import unreachable_store

COUNT_CAP = 10_000


class ExperimentInfo(BaseModel):
    experiment_id: str
    name: str


class Diagnosis(BaseModel):
    store_kind: str
    tracking_uri: str
    default_store: bool
    experiment: ExperimentInfo | None = None
    trace_count: int | None = None
    trace_count_capped: bool = False
    sample: list[TraceSummary] = []
    experiments: list[ExperimentInfo] = []
    hints: list[str] = []
    problem: str | None = None


def diagnose(services: Services, experiment_id: str | None, sample: int) -> Diagnosis:
    settings = services.settings
    report = Diagnosis(
        store_kind=settings.store_kind,
        tracking_uri=settings.display_uri(),
        default_store=settings.tracking_uri_is_default,
    )
    # MLflow's and Databricks' clients retry an unreachable server for minutes; ask once, briefly.
    unreachable = unreachable_store(settings)
    if unreachable:
        report.problem = unreachable
        return report
    if settings.tracking_uri_is_default and Path(".env").is_file():
        report.hints.append("a .env file is here; pass --env-file .env to use it")
    chosen = experiment_id or settings.experiment_id
    if not chosen:
        report.experiments = _experiments(services)
        report.problem = "no experiment chosen; pass --experiment-id or set MLFLOW_EXPERIMENT_ID"
        if report.experiments:
            report.problem += " (experiments in this store are listed above)"
        return report
    experiment = _experiment(services, chosen)
    report.experiment = experiment
    report.trace_count, report.trace_count_capped = _count_traces(services, chosen)
    if report.trace_count == 0:
        report.problem = f"experiment {chosen} has no traces; log some with MLflow tracing first"
        return report
    page = services.traces.search(chosen, max_results=max(1, min(sample, 100)), order_by=["timestamp_ms DESC"])
    report.sample = [summarize(trace.info) for trace in page.traces]
    return report


def _experiment(services: Services, experiment_id: str) -> ExperimentInfo:
    from mlflow.exceptions import MlflowException

    try:
        experiment = services.client.get_experiment(experiment_id)
    except MlflowException as error:
        if error.error_code not in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}:
            raise
        raise NotFoundError(
            f"experiment {experiment_id} is not in {services.settings.display_uri()}; run doctor without "
            "--experiment-id to list the experiments there"
        ) from error
    return ExperimentInfo(experiment_id=experiment.experiment_id, name=experiment.name)


def _experiments(services: Services) -> list[ExperimentInfo]:
    found = services.client.search_experiments(max_results=50, order_by=["last_update_time DESC"])
    return [ExperimentInfo(experiment_id=e.experiment_id, name=e.name) for e in found]


def _count_traces(services: Services, experiment_id: str) -> tuple[int, bool]:
    count, token = 0, None
    while count < COUNT_CAP:
        page = services.client.search_traces(
            locations=[experiment_id], max_results=1000, page_token=token, include_spans=False
        )
        count += len(page)
        token = page.token
        if not token:
            return count, False
    return count, True
