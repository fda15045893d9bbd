"""Demo experiments: simulated agent traffic with known problems, in any store."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from agent.runtime import Runtime

DEMO_PREFIX = "demo-"
SEED_TAG = "demo.seed"


class DemoExperiment(BaseModel):
    experiment_id: str
    name: str
    scenario: str
    traces: int
    created: bool
    tracking_uri: str


def ensure_demo(
    rt: Runtime, scenario: str, traces: int, seed: int, on_traces: Callable[[int], None] | None = None
) -> DemoExperiment:
    """Reuse the scenario's demo experiment when it holds the same traffic; otherwise rebuild it."""
    from agent.simulation.scenarios import log_scenario
    from agent.simulation.scenarios import scenario as find_scenario

    find_scenario(scenario)  # refuse an unknown name before touching the store
    client = rt.client
    name = f"{DEMO_PREFIX}{scenario}"

    def made(experiment_id: str, created: bool) -> DemoExperiment:
        return DemoExperiment(experiment_id=experiment_id, name=name, scenario=scenario, traces=traces,
                              created=created, tracking_uri=rt.settings.display_uri())  # fmt: skip

    existing = client.get_experiment_by_name(name)
    if existing is not None:
        count = len(client.search_traces(locations=[existing.experiment_id], max_results=traces + 1,
                                         include_spans=False))  # fmt: skip
        if count == traces and existing.tags.get(SEED_TAG) == str(seed):
            return made(existing.experiment_id, created=False)
        # Experiment names stay reserved after deletion: move the old one aside first.
        client.rename_experiment(existing.experiment_id, f"{name}-replaced-{existing.experiment_id}")
        client.delete_experiment(existing.experiment_id)
    location = str(rt.settings.home / "artifacts") if rt.settings.tracking_uri_is_default else None
    experiment_id = client.create_experiment(name, artifact_location=location, tags={SEED_TAG: str(seed)})
    log_scenario(client, experiment_id, scenario, traces, seed, on_traces=on_traces)
    return made(experiment_id, created=True)
