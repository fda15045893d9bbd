"""Readable, bounded views of MLflow traces: what search returns and what get shows.

Trace content is untrusted data written by strangers: views truncate it (saying so) and never
interpret it; renderers must print it as plain text.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from analyze_experiment.agent.core.traces.text import clean

if TYPE_CHECKING:
    from mlflow.entities import Span, Trace, TraceInfo

PREVIEW_CHARS = 300
CONTENT_CHARS = 4000
ATTRIBUTE_CHARS = 500
MAX_SPANS = 300


def truncate(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = clean(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [truncated: {len(text) - limit:,} more characters]"


def excerpt(text: str | None, limit: int) -> str:
    """One line of at most `limit` characters, for quoting trace text inside other text."""
    flat = " ".join(clean(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class TraceSummary(BaseModel):
    trace_id: str
    name: str | None
    state: str
    request_time: str
    execution_duration_ms: int | None
    request_preview: str | None
    response_preview: str | None


class SpanView(BaseModel):
    span_id: str
    parent_id: str | None
    depth: int
    name: str
    span_type: str | None
    start_offset_ms: float
    duration_ms: float | None
    status: str
    status_message: str | None = None
    errors: list[str] = Field(default_factory=list, description="Exception messages from span events.")
    inputs: str | None = None
    outputs: str | None = None


class AssessmentView(BaseModel):
    name: str
    source_type: str | None
    source_id: str | None
    value: Any = None
    error: str | None = None
    rationale: str | None = None
    span_id: str | None = None


class TraceView(TraceSummary):
    request: str | None
    response: str | None
    tags: dict[str, str]
    metadata: dict[str, str]
    spans: list[SpanView]
    spans_cut: int = Field(default=0, description="Spans not shown (a trace shows its first MAX_SPANS).")
    assessments: list[AssessmentView]


def summarize(info: TraceInfo) -> TraceSummary:
    fields = {
        "trace_id": info.trace_id,
        "name": info.tags.get("mlflow.traceName"),
        "state": str(info.state.value if hasattr(info.state, "value") else info.state),
        "request_time": _iso(info.request_time),
        "execution_duration_ms": info.execution_duration,
        "request_preview": truncate(info.request_preview, PREVIEW_CHARS),
        "response_preview": truncate(info.response_preview, PREVIEW_CHARS),
    }
    return TraceSummary(**clean(fields))


def view(trace: Trace) -> TraceView:
    summary = summarize(trace.info)
    spans = _span_tree(trace.data.spans)
    fields = dict(
        **summary.model_dump(),
        request=truncate(_as_text(trace.data.request), CONTENT_CHARS),
        response=truncate(_as_text(trace.data.response), CONTENT_CHARS),
        tags={k: truncate(v, ATTRIBUTE_CHARS) or "" for k, v in trace.info.tags.items()},
        metadata={
            k: truncate(v, ATTRIBUTE_CHARS) or ""
            for k, v in trace.info.trace_metadata.items()
            if k not in {"mlflow.traceInputs", "mlflow.traceOutputs"}
        },
        spans=spans[:MAX_SPANS],
        spans_cut=max(0, len(spans) - MAX_SPANS),
        assessments=[_assessment(a) for a in trace.info.assessments or []],
    )
    return TraceView(**clean(fields))


def _span_tree(spans: list[Span]) -> list[SpanView]:
    """Spans in depth-first order with their depth, so a reader sees the call structure."""
    by_parent: dict[str | None, list[Span]] = {}
    ids = {span.span_id for span in spans}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        by_parent.setdefault(parent, []).append(span)
    origin = min((span.start_time_ns for span in spans), default=0)
    ordered: list[SpanView] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: s.start_time_ns):
            ordered.append(_span(span, depth, origin))
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return ordered


def _span(span: Span, depth: int, origin_ns: int) -> SpanView:
    status = span.status
    end = span.end_time_ns
    errors = [
        str(event.attributes.get("exception.message") or event.attributes.get("exception.type") or event.name)
        for event in span.events
        if event.name == "exception"
    ]
    return SpanView(
        span_id=span.span_id,
        parent_id=span.parent_id,
        depth=depth,
        name=clean(span.name),  # the spans are models: the view's last `clean` does not reach inside
        span_type=span.span_type,
        start_offset_ms=round((span.start_time_ns - origin_ns) / 1e6, 3),
        duration_ms=None if end is None else round((end - span.start_time_ns) / 1e6, 3),
        status=str(status.status_code.value if hasattr(status.status_code, "value") else status.status_code),
        status_message=truncate(status.description or None, ATTRIBUTE_CHARS),
        errors=[truncate(e, ATTRIBUTE_CHARS) or "" for e in errors],
        inputs=truncate(_as_text(span.inputs), ATTRIBUTE_CHARS),
        outputs=truncate(_as_text(span.outputs), ATTRIBUTE_CHARS),
    )


def _assessment(assessment: Any) -> AssessmentView:
    feedback = getattr(assessment, "feedback", None)
    expectation = getattr(assessment, "expectation", None)
    value = feedback.value if feedback is not None else getattr(expectation, "value", None)
    error = getattr(feedback, "error", None) if feedback is not None else None
    source = getattr(assessment, "source", None)
    return AssessmentView(
        name=clean(assessment.name),
        source_type=str(getattr(source, "source_type", None) or "") or None,
        source_id=clean(getattr(source, "source_id", None)),
        value=clean(value if isinstance(value, str | int | float | bool) or value is None else _as_text(value)),
        error=None if error is None else truncate(str(getattr(error, "error_message", error)), ATTRIBUTE_CHARS),
        rationale=truncate(assessment.rationale, ATTRIBUTE_CHARS),
        span_id=assessment.span_id,
    )


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _iso(epoch_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


# -- field projection, compatible with `mlflow traces search --extract-fields` -----------------------

_SEGMENT = re.compile(r"`([^`]*)`|([^.`]+)")


def parse_field_path(path: str) -> list[str]:
    segments = [quoted or plain for quoted, plain in _SEGMENT.findall(path.strip())]
    if not segments:
        raise ValueError(f"empty field path in --extract-fields: '{path}'")
    return segments


def check_field_paths(paths: list[str]) -> None:
    """Refuse a path that can match nothing in MLflow's trace JSON, rather than silently returning less."""
    import dataclasses

    from mlflow.entities import TraceInfo

    from analyze_experiment.agent.core.errors import UserError

    known = {"info": {f.name for f in dataclasses.fields(TraceInfo)}, "data": {"spans"}}
    for path in paths:
        try:
            segments = parse_field_path(path)
        except ValueError as error:
            raise UserError(str(error)) from error
        top, below = segments[0], segments[1:2]
        choices = known.get(top)
        if choices is None or (below and below[0] != "*" and below[0] not in choices):
            fields = ", ".join(f"{name}.{key}" for name in known for key in sorted(known[name]))
            raise UserError(f"--extract-fields {path!r} matches nothing in a trace; fields start with one of: {fields}")


def extract_fields(document: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Keep only the given dotted paths (`*` matches every list item or key), preserving structure."""
    result: dict[str, Any] = {}
    for path in paths:
        _merge(result, _project(document, parse_field_path(path)))
    return result


def needs_spans(paths: list[str]) -> bool:
    return any(parse_field_path(path)[0] == "data" for path in paths)


_MISSING = object()


def _project(node: Any, segments: list[str]) -> Any:
    if not segments:
        return node
    head, rest = segments[0], segments[1:]
    if isinstance(node, list):
        if head != "*" and not head.isdigit():
            return _MISSING
        items = node if head == "*" else node[int(head) : int(head) + 1]
        picked = [_project(item, rest) for item in items]
        return [p for p in picked if p is not _MISSING]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        out = {key: _project(node[key], rest) for key in keys}
        out = {k: v for k, v in out.items() if v is not _MISSING}
        return out if out else _MISSING
    return _MISSING


def _merge(into: dict[str, Any], part: Any) -> None:
    if not isinstance(part, dict):
        return
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = [
                {**a, **b} if isinstance(a, dict) and isinstance(b, dict) else b
                for a, b in zip(into[key], value, strict=False)
            ] or value
        else:
            into[key] = value
