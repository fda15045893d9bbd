"""The demo experiment: simulated support-agent traffic with known problems, in any store."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from agent.runtime import Runtime

DEMO_EXPERIMENT = "demo-support-agent"


class DemoExperiment(BaseModel):
    experiment_id: str
    name: str
    traces: int
    created: bool
    tracking_uri: str


def ensure_demo(rt: Runtime, traces: int, seed: int, on_traces: Callable[[int], None] | None = None) -> DemoExperiment:
    """Reuse the demo experiment when it already holds `traces` traces; otherwise rebuild it."""
    from agent.simulation.support import simulate_support_agent

    client = rt.client
    existing = client.get_experiment_by_name(DEMO_EXPERIMENT)
    if existing is not None:
        count = len(client.search_traces(locations=[existing.experiment_id], max_results=1000, include_spans=False))
        if count == traces:
            return DemoExperiment(
                experiment_id=existing.experiment_id,
                name=DEMO_EXPERIMENT,
                traces=count,
                created=False,
                tracking_uri=rt.settings.display_uri(),
            )
        # Experiment names stay reserved after deletion: move the old one aside first.
        client.rename_experiment(existing.experiment_id, f"{DEMO_EXPERIMENT}-replaced-{existing.experiment_id}")
        client.delete_experiment(existing.experiment_id)
    location = None
    if rt.settings.tracking_uri_is_default:
        location = str(rt.settings.home / "artifacts")
    experiment_id = client.create_experiment(DEMO_EXPERIMENT, artifact_location=location)
    simulate_support_agent(client, experiment_id, traces, seed=seed, on_traces=on_traces)
    return DemoExperiment(
        experiment_id=experiment_id,
        name=DEMO_EXPERIMENT,
        traces=traces,
        created=True,
        tracking_uri=rt.settings.display_uri(),
    )
