"""The traces table: the seed's Databricks schema, with MLflow traces converted into its rows.

Column names and nesting follow the Databricks trace table exactly, so one query runs on every
engine. Span and assessment attributes keep MLflow's encoding (JSON text), as Databricks does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from analyze_experiment.agent.core.traces.text import scrub

if TYPE_CHECKING:
    from mlflow.entities import Trace

TABLE = "traces"
_STR = pa.string()
_TS = pa.timestamp("us")
_MAP = pa.map_(pa.string(), pa.string())
EVENT = pa.struct([("name", _STR), ("timestamp", _TS), ("attributes", _MAP)])
SPAN = pa.struct(
    [
        ("name", _STR),
        ("span_id", _STR),
        ("trace_id", _STR),
        ("parent_id", _STR),
        ("start_time", _TS),
        ("end_time", _TS),
        ("status_code", _STR),
        ("status_message", _STR),
        ("attributes", _MAP),
        ("events", pa.list_(EVENT)),
    ]
)
ASSESSMENT = pa.struct(
    [
        ("assessment_id", _STR),
        ("name", _STR),
        ("source", pa.struct([("source_type", _STR), ("source_id", _STR)])),
        ("feedback", pa.struct([("value", _STR), ("error", _STR)])),
        ("expectation", pa.struct([("value", _STR)])),
        ("rationale", _STR),
        ("metadata", _MAP),
        ("span_id", _STR),
    ]
)
SCHEMA = pa.schema(
    [
        ("trace_id", _STR),
        ("client_request_id", _STR),
        ("request_time", _TS),
        ("state", _STR),
        ("execution_duration_ms", pa.int64()),
        ("request", _STR),
        ("response", _STR),
        ("request_preview", _STR),
        ("response_preview", _STR),
        ("trace_metadata", _MAP),
        ("tags", _MAP),
        ("trace_location", pa.struct([("type", _STR), ("mlflow_experiment", pa.struct([("experiment_id", _STR)]))])),
        ("spans", pa.list_(SPAN)),
        ("assessments", pa.list_(ASSESSMENT)),
    ]
)


def to_arrow(traces: list[Trace]) -> pa.Table:
    rows = [trace_row(trace) for trace in traces]
    try:
        return pa.Table.from_pylist(rows, schema=SCHEMA)
    except UnicodeEncodeError:
        return pa.Table.from_pylist(scrub(rows), schema=SCHEMA)  # the rare batch with broken text


def trace_row(trace: Trace) -> dict[str, Any]:
    info = trace.info
    experiment = getattr(info.trace_location, "mlflow_experiment", None)
    return {
        "trace_id": info.trace_id,
        "client_request_id": info.client_request_id,
        "request_time": _from_ms(info.request_time),
        "state": str(getattr(info.state, "value", info.state)),
        "execution_duration_ms": info.execution_duration,
        "request": trace.data.request,  # MLflow keeps these as JSON text already
        "response": trace.data.response,
        "request_preview": info.request_preview,
        "response_preview": info.response_preview,
        "trace_metadata": list(info.trace_metadata.items()),
        "tags": list(info.tags.items()),
        "trace_location": {
            "type": str(getattr(info.trace_location.type, "value", info.trace_location.type)),
            "mlflow_experiment": {"experiment_id": getattr(experiment, "experiment_id", None)},
        },
        "spans": [_span_row(span) for span in trace.data.spans],
        "assessments": [_assessment_row(a) for a in info.assessments or []],
    }


def _span_row(span: Any) -> dict[str, Any]:
    status = span.status
    return {
        "name": span.name,
        "span_id": span.span_id,
        "trace_id": span.trace_id,
        "parent_id": span.parent_id,
        "start_time": _from_ns(span.start_time_ns),
        "end_time": _from_ns(span.end_time_ns),
        "status_code": str(getattr(status.status_code, "value", status.status_code)),
        "status_message": status.description or None,
        "attributes": [(k, _json(v)) for k, v in (span.attributes or {}).items()],
        "events": [
            {
                "name": e.name,
                "timestamp": _from_ns(e.timestamp),
                "attributes": [(k, v if isinstance(v, str) else _json(v)) for k, v in (e.attributes or {}).items()],
            }
            for e in span.events
        ],
    }


def _assessment_row(assessment: Any) -> dict[str, Any]:
    feedback = getattr(assessment, "feedback", None)
    expectation = getattr(assessment, "expectation", None)
    source = assessment.source
    error = getattr(feedback, "error", None) if feedback is not None else None
    return {
        "assessment_id": assessment.assessment_id,
        "name": assessment.name,
        "source": {
            "source_type": str(getattr(source.source_type, "value", source.source_type)) if source else None,
            "source_id": getattr(source, "source_id", None),
        },
        "feedback": None
        if feedback is None
        else {
            "value": _json(feedback.value),
            "error": None if error is None else str(getattr(error, "error_message", None) or error),
        },
        "expectation": None if expectation is None else {"value": _json(expectation.value)},
        "rationale": assessment.rationale,
        "metadata": list((assessment.metadata or {}).items()),
        "span_id": assessment.span_id,
    }


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


def _from_ns(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=UTC).replace(tzinfo=None)
