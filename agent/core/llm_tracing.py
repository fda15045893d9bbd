"""The analyst's own LLM calls are traced too, into their own experiment, never the analysed one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from analyze_experiment.agent.core.services import Services

if TYPE_CHECKING:
    from langchain_core.callbacks import BaseCallbackHandler

ANALYST_EXPERIMENT = "analyze-experiment-analyst"


def analyst_tracer(services: Services) -> BaseCallbackHandler:
    import mlflow
    from mlflow.entities.trace_location import MlflowExperimentLocation
    from mlflow.langchain.langchain_tracer import MlflowLangchainTracer
    from mlflow.tracing import set_destination

    # The tracer logs a warning per span it cannot pair in structured-output chains; the trace is still
    # written, so the warning is noise to the person running the analysis.
    logging.getLogger("mlflow.utils.autologging_utils").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(services.settings.tracking_uri)
    existing = services.client.get_experiment_by_name(ANALYST_EXPERIMENT)
    experiment_id = existing.experiment_id if existing else services.client.create_experiment(ANALYST_EXPERIMENT)
    set_destination(MlflowExperimentLocation(experiment_id))
    tracer: BaseCallbackHandler = MlflowLangchainTracer()
    return tracer


def flush_analyst_traces() -> None:
    import sys

    if "mlflow" in sys.modules:
        import mlflow

        mlflow.flush_trace_async_logging()
