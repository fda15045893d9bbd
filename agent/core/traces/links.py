"""Which traces exist in an experiment, which are linked to a run, and linking them.

MLflow accepts links to trace ids that do not exist, silently, and at most 100 ids per call: this
module is where both limits are handled, so no caller has to remember them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.agent.core.tracking import file_store_refusal, retry_transient

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import TraceInfo

LINK_BATCH = 100
RACE_ATTEMPTS = 3
_DUPLICATE = re.compile(r"UNIQUE constraint failed|Duplicate entry|duplicate key value", re.IGNORECASE)
# Trace ids are opaque to us, but they are pasted into filter strings: allow only what MLflow mints.
_SAFE_TRACE_ID = re.compile(r"^[A-Za-z0-9_:.\-/]{1,200}$")


def batches(ids: Iterable[str], size: int = LINK_BATCH) -> Iterator[list[str]]:
    chunk: list[str] = []
    for trace_id in dict.fromkeys(ids):
        chunk.append(trace_id)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _duplicate_key(error: Exception) -> bool:
    return bool(_DUPLICATE.search(str(error)))


def is_safe_trace_id(trace_id: str) -> bool:
    return bool(_SAFE_TRACE_ID.match(trace_id))


def id_filter(trace_ids: list[str]) -> str:
    quoted = ", ".join(f"'{trace_id}'" for trace_id in trace_ids)
    return f"trace.request_id IN ({quoted})"


class TraceLinks:
    def __init__(self, client: MlflowClient, batch_size: int = LINK_BATCH) -> None:
        self._client = client
        self._batch_size = batch_size

    def existing(self, experiment_id: str, trace_ids: Iterable[str]) -> set[str]:
        """The subset of `trace_ids` that are traces of this experiment."""
        return self._matching(experiment_id, trace_ids, run_id=None)

    def linked(self, experiment_id: str, run_id: str, trace_ids: Iterable[str]) -> set[str]:
        """The subset of `trace_ids` already linked to the run (or logged inside it)."""
        return self._matching(experiment_id, trace_ids, run_id=run_id)

    def require_linking_support(self) -> None:
        """File stores cannot link traces to runs, so an analysis there could not keep its record."""
        refusal = file_store_refusal(self._client.tracking_uri)
        if refusal:
            raise UserError(refusal)

    def link(self, run_id: str, trace_ids: Iterable[str]) -> int:
        """Link traces to the run in batches MLflow accepts; linking twice is harmless."""
        self.require_linking_support()
        count = 0
        for chunk in batches(trace_ids, self._batch_size):
            self._link_chunk(run_id, chunk)
            count += len(chunk)
        return count

    def _link_chunk(self, run_id: str, chunk: list[str]) -> None:
        """MLflow checks which links exist and inserts the rest in one transaction; two writers linking
        the same trace at once (parallel test branches) make the later insert break the unique key.
        By then the other's links are committed, so asking again links only what is still missing."""
        from mlflow.exceptions import MlflowException

        for attempt in range(RACE_ATTEMPTS):
            try:
                retry_transient(self._client.link_traces_to_run)(chunk, run_id)
                return
            except MlflowException as error:
                if attempt == RACE_ATTEMPTS - 1 or not _duplicate_key(error):
                    raise

    def infos(self, experiment_id: str, trace_ids: Iterable[str]) -> dict[str, TraceInfo]:
        """Trace metadata (with request/response previews) for the given ids, without spans."""
        found: dict[str, TraceInfo] = {}
        for chunk in batches(tid for tid in trace_ids if is_safe_trace_id(tid)):
            found.update(self._search_infos(experiment_id, chunk, None))
        return found

    def _matching(self, experiment_id: str, trace_ids: Iterable[str], run_id: str | None) -> set[str]:
        found: set[str] = set()
        for chunk in batches(tid for tid in trace_ids if is_safe_trace_id(tid)):
            found.update(self._search_infos(experiment_id, chunk, run_id))
        return found

    @retry_transient
    def _search_infos(self, experiment_id: str, chunk: list[str], run_id: str | None) -> dict[str, TraceInfo]:
        traces = self._client.search_traces(
            locations=[experiment_id],
            filter_string=id_filter(chunk),
            run_id=run_id,
            max_results=len(chunk),
            include_spans=False,
        )
        return {trace.info.trace_id: trace.info for trace in traces}
