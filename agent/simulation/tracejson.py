"""Build traces in MLflow's own trace JSON (what `Trace.to_dict()` gives), in memory.

The simulator writes traces in this form, scenario recordings are stored in it, and
`analyze_experiment.agent.simulation.writer` sends it to any store in batches.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any

MS = 1_000_000


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class SpanDraft:
    name: str
    span_type: str
    start_ns: int
    end_ns: int
    span_id: str
    parent_id: str | None
    inputs: Any = None
    outputs: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exception: tuple[str, str] | None = None


@dataclass
class AssessmentDraft:
    name: str
    value: Any
    source_type: str
    source_id: str
    rationale: str | None = None
    error: str | None = None


def _set_exception(span: SpanDraft, exception: str | None) -> None:
    if exception:
        kind, _, message = exception.partition(": ")
        span.exception = (kind, message or kind)


class TraceDraft:
    """One trace under construction: a root span, children, tags, metadata and assessments."""

    def __init__(self, rng: random.Random, ids: random.Random, name: str, start_ns: int, inputs: Any) -> None:
        """`rng` drives content and timing; `ids` mints ids, seeded per experiment so that the same
        content logged to two experiments of one store never collides."""
        self._rng = rng
        self._ids = ids
        raw = ids.getrandbits(128).to_bytes(16, "big")
        self.trace_id = "tr-" + raw.hex()
        self._otel_trace_id = base64.b64encode(raw).decode()
        self.tags: dict[str, str] = {}
        self.metadata: dict[str, str] = {}
        self.assessments: list[AssessmentDraft] = []
        self.root = self._draft(name, "AGENT", start_ns, None, inputs)
        self.spans: list[SpanDraft] = [self.root]
        self.clock = start_ns + rng.randrange(1, 5) * MS

    def _draft(self, name: str, span_type: str, start: int, parent: str | None, inputs: Any) -> SpanDraft:
        span_id = base64.b64encode(self._ids.getrandbits(64).to_bytes(8, "big")).decode()
        return SpanDraft(name, span_type, start, start, span_id, parent, inputs)

    def child(
        self,
        name: str,
        span_type: str,
        duration_ms: float,
        inputs: Any = None,
        outputs: Any = None,
        *,
        error: str | None = None,
        exception: str | None = None,
        attributes: dict[str, Any] | None = None,
        parent: SpanDraft | None = None,
    ) -> SpanDraft:
        """A child of the root (or of an `open` span) starting now; the clock moves to its end."""
        span = self._draft(name, span_type, self.clock, (parent or self.root).span_id, inputs)
        span.end_ns = self.clock + int(duration_ms * MS)
        span.outputs, span.error, span.attributes = outputs, error, attributes or {}
        _set_exception(span, exception)
        self.spans.append(span)
        self.clock = span.end_ns + self._rng.randrange(1, 4) * MS
        return span

    def open(
        self,
        name: str,
        span_type: str,
        inputs: Any = None,
        *,
        attributes: dict[str, Any] | None = None,
        parent: SpanDraft | None = None,
    ) -> SpanDraft:
        """A span that encloses the spans made until `close`: pass it as their `parent`."""
        span = self._draft(name, span_type, self.clock, (parent or self.root).span_id, inputs)
        span.attributes = attributes or {}
        self.spans.append(span)
        self.clock += self._rng.randrange(1, 3) * MS
        return span

    def close(
        self, span: SpanDraft, outputs: Any = None, *, error: str | None = None, exception: str | None = None
    ) -> None:
        """End an `open` span now (after its children); the clock moves past it."""
        span.end_ns = self.clock + self._rng.randrange(1, 3) * MS
        span.outputs, span.error = outputs, error
        _set_exception(span, exception)
        self.clock = span.end_ns + self._rng.randrange(1, 4) * MS

    def finish(self, outputs: Any = None, error: str | None = None) -> None:
        self.root.outputs, self.root.error = outputs, error
        self.root.end_ns = self.clock + self._rng.randrange(1, 4) * MS

    @property
    def failed(self) -> bool:
        return self.root.error is not None

    def to_dict(self, experiment_id: str) -> dict[str, Any]:
        return {
            "info": {
                "trace_id": self.trace_id,
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}},
                "tags": dict(self.tags),
                "trace_metadata": dict(self.metadata),
            },
            "data": {"spans": [self._span_dict(span) for span in self.spans]},
            "assessments": [vars(a) for a in self.assessments],
        }

    def _span_dict(self, span: SpanDraft) -> dict[str, Any]:
        attributes = {
            "mlflow.traceRequestId": _encode(self.trace_id),
            "mlflow.spanType": _encode(span.span_type),
            **{key: _encode(value) for key, value in span.attributes.items()},
        }
        if span.inputs is not None:
            attributes["mlflow.spanInputs"] = _encode(span.inputs)
        if span.outputs is not None:
            attributes["mlflow.spanOutputs"] = _encode(span.outputs)
        if span is self.root:
            # The store derives the trace's tags and metadata from these root-span attributes.
            attributes.update(
                {f"mlflow.traceTag.{k}": _encode(v) for k, v in {"mlflow.traceName": span.name, **self.tags}.items()}
            )
            if "mlflow.trace.user" in self.metadata:
                attributes["user.id"] = _encode(self.metadata["mlflow.trace.user"])
            if "mlflow.trace.session" in self.metadata:
                attributes["session.id"] = _encode(self.metadata["mlflow.trace.session"])
        events = []
        if span.exception:
            kind, message = span.exception
            events.append(
                {
                    "name": "exception",
                    "time_unix_nano": span.end_ns,
                    "attributes": {"exception.type": kind, "exception.message": message},
                }
            )
        return {
            "trace_id": self._otel_trace_id,
            "span_id": span.span_id,
            "parent_span_id": span.parent_id,
            "name": span.name,
            "start_time_unix_nano": span.start_ns,
            "end_time_unix_nano": span.end_ns,
            "events": events,
            "status": {"code": "STATUS_CODE_ERROR" if span.error else "STATUS_CODE_OK", "message": span.error or ""},
            "attributes": attributes,
        }
