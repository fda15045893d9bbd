"""Trace search and get that link everything they return to the analysis run, before returning it.

This is how the rule "every inspected trace is linked to the analysis run" stops depending on
anyone's discipline: with a run id there is no way to read a trace here without linking it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyze_experiment.agent.core.errors import InvariantViolation, NotFoundError, UserError
from analyze_experiment.agent.core.traces.links import TraceLinks, is_safe_trace_id
from analyze_experiment.agent.core.tracking import retry_transient

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Trace

MAX_SEARCH_RESULTS = 1000


@dataclass(frozen=True)
class SearchPage:
    traces: list[Trace]
    next_page_token: str | None
    linked_to: str | None


class TraceAccess:
    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self._links = TraceLinks(client)

    def search(
        self,
        experiment_id: str,
        *,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: list[str] | None = None,
        page_token: str | None = None,
        include_spans: bool = False,
        link_to_run: str | None = None,
    ) -> SearchPage:
        from mlflow.exceptions import MlflowException

        if not 1 <= max_results <= MAX_SEARCH_RESULTS:
            raise UserError(f"--max-results must be between 1 and {MAX_SEARCH_RESULTS}; page with --page-token")
        if link_to_run:
            self._require_run_in(experiment_id, link_to_run)
        try:
            found = retry_transient(self._client.search_traces)(
                locations=[experiment_id],
                filter_string=filter_string or None,
                max_results=max_results,
                order_by=order_by,
                page_token=page_token,
                include_spans=include_spans,
            )
        except MlflowException as error:
            if error.error_code == "INVALID_PARAMETER_VALUE":
                raise UserError(f"invalid trace search: {error.message}") from error
            raise
        traces = list(found)
        if link_to_run:
            self._links.link(link_to_run, [trace.info.trace_id for trace in traces])
        token = found.token.decode() if isinstance(found.token, bytes) else found.token
        return SearchPage(traces=traces, next_page_token=token, linked_to=link_to_run)

    def get(self, trace_id: str, *, link_to_run: str | None = None) -> Trace:
        from mlflow.exceptions import MlflowException

        if not is_safe_trace_id(trace_id):
            raise UserError(f"'{trace_id}' is not a trace id; trace ids look like tr-0123abcd...")
        try:
            trace: Trace = retry_transient(self._client.get_trace)(trace_id)
        except MlflowException as error:
            if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"}:
                raise NotFoundError(f"trace {trace_id} does not exist; find ids with `traces search`") from error
            raise
        if link_to_run:
            experiment_id = getattr(trace.info.trace_location.mlflow_experiment, "experiment_id", None)
            self._require_run_in(str(experiment_id), link_to_run)
            self._links.link(link_to_run, [trace_id])
        return trace

    def _require_run_in(self, experiment_id: str, run_id: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            run = retry_transient(self._client.get_run)(run_id)
        except MlflowException as error:
            raise NotFoundError(f"run {run_id} does not exist; pass the analysis run id to --run-id") from error
        if run.info.experiment_id != experiment_id:
            raise InvariantViolation(
                f"run {run_id} belongs to experiment {run.info.experiment_id}, not {experiment_id}; "
                "traces are linked only to an analysis of their own experiment"
            )
        require_open_run(run_id, run.data.tags)


def require_open_run(run_id: str, tags: dict[str, str]) -> None:
    """A finished analysis is read-only: what is read later is not linked to it."""
    from analyze_experiment.agent.core.insights.service import STATUS_TAG

    status = tags.get(STATUS_TAG)
    if status not in (None, "ACTIVE"):
        raise InvariantViolation(
            f"analysis {run_id} is {status} and read-only; read without --run-id, or reopen it with "
            f"`insights update-analysis --run-id {run_id} --status ACTIVE --reason ...`"
        )
