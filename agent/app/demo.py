"""Demo experiments: simulated agent traffic with known problems, in any store.

Each scenario, size and seed has an experiment of its own (`demo-support-500-s7`), so asking for
another size or seed never touches an existing demo, nor the analyses logged against it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from analyze_experiment.agent.core import failpoints
from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.tracking import create_sqlite_store, file_store_refusal, retry_transient

if TYPE_CHECKING:
    from mlflow.entities import Experiment

DEMO_PREFIX = "demo-"
SEED_TAG = "demo.seed"
TRACE_PAGE = 500


class DemoExperiment(BaseModel):
    experiment_id: str
    name: str
    scenario: str
    seed: int
    traces: int
    created: bool
    tracking_uri: str


def demo_name(scenario: str, traces: int, seed: int) -> str:
    return f"{DEMO_PREFIX}{scenario}-{traces}-s{seed}"


def ensure_demo(
    services: Services, scenario: str, traces: int, seed: int, on_traces: Callable[[int], None] | None = None
) -> DemoExperiment:
    """Reuse the demo experiment of this scenario, size and seed when there is one; else create it."""
    from mlflow.exceptions import MlflowException

    from analyze_experiment.agent.simulation.scenarios import scenario as find_scenario

    find_scenario(scenario)  # refuse an unknown name before touching the store
    _prepare_store(services)
    name = demo_name(scenario, traces, seed)

    def made(experiment_id: str, count: int, created: bool) -> DemoExperiment:
        return DemoExperiment(
            experiment_id=experiment_id,
            name=name,
            scenario=scenario,
            seed=seed,
            traces=count,
            created=created,
            tracking_uri=services.settings.display_uri(),
        )

    lookup = retry_transient(services.client.get_experiment_by_name)
    existing = lookup(name)
    if existing is None:
        try:
            return made(_create(services, name, scenario, traces, seed, on_traces), traces, created=True)
        except MlflowException:
            existing = lookup(name)  # another demo of the same traffic may have taken the name first
            if existing is None:
                raise
    return made(existing.experiment_id, _reusable_count(services, existing), created=False)


def _prepare_store(services: Services) -> None:
    """The demo writes traffic for analyses: refuse a store they cannot use before writing any."""
    refusal = file_store_refusal(services.settings.tracking_uri)
    if refusal:
        raise UserError(refusal)
    create_sqlite_store(services.settings)


def _reusable_count(services: Services, experiment: Experiment) -> int:
    """How many traces the existing demo experiment holds; a deleted one is the user's to bring back."""
    if experiment.lifecycle_stage != "active":
        store, experiment_id = services.settings.display_uri(), experiment.experiment_id
        restore = f"MLFLOW_TRACKING_URI='{store}' mlflow experiments restore -x {experiment_id}"
        raise UserError(
            f"the demo experiment {experiment.name} (id {experiment_id}) is deleted; restore it with "
            f"`{restore}`, or run `analyze-experiment demo` with another --seed"
        )
    count, token = 0, None
    while True:
        page = retry_transient(services.client.search_traces)(
            locations=[experiment.experiment_id], max_results=TRACE_PAGE, page_token=token, include_spans=False
        )
        count += len(page)
        token = page.token
        if not token:
            return count


def _create(
    services: Services, name: str, scenario: str, traces: int, seed: int, on_traces: Callable[[int], None] | None
) -> str:
    """Log the traffic under a temporary name and take the demo's name only when all of it is there, so
    an interrupted demo is never mistaken for a complete one."""
    from analyze_experiment.agent.simulation.scenarios import log_scenario

    client = services.client
    location = str(services.settings.home / "artifacts") if services.settings.tracking_uri_is_default else None
    tags = {SEED_TAG: str(seed), "demo.scenario": scenario, "demo.traces": str(traces)}
    staging = f"{name}-incomplete-{uuid.uuid4().hex[:8]}"
    experiment_id = retry_transient(client.create_experiment)(staging, artifact_location=location, tags=tags)
    try:
        log_scenario(client, experiment_id, scenario, traces, seed, on_traces=on_traces)
        failpoints.reach("demo.logged")
        retry_transient(client.rename_experiment)(experiment_id, name)
    except BaseException:
        # Only this call's own half-written experiment is removed; nobody can have analysed it yet.
        with contextlib.suppress(Exception):
            client.delete_experiment(experiment_id)
        raise
    return experiment_id
