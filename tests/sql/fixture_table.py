"""A small traces table whose every answer is evident by reading it, for the SQL conformance suite.

Six traces over two days: two failures (a tool timeout, a rate limit), an apologetic answer, an
empty answer, a two-tool trace, and assessments from a person and a judge.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from analyze_experiment.agent.core.traces.table import SCHEMA

T0 = datetime(2026, 3, 1, 9, 0, 0)


def span(
    trace_id: str,
    name: str,
    kind: str,
    start_ms: int,
    ms: int,
    status: str = "OK",
    message: str | None = None,
    parent: str | None = "root",
    exception: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    begin = T0 + timedelta(milliseconds=start_ms)
    attributes = {"mlflow.spanType": json.dumps(kind), **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    events = []
    if exception:
        events.append(
            {
                "name": "exception",
                "timestamp": begin + timedelta(milliseconds=ms),
                "attributes": [("exception.message", exception), ("exception.type", "Error")],
            }
        )
    return {
        "name": name,
        "span_id": f"{trace_id}-{name}",
        "trace_id": trace_id,
        "parent_id": None if parent is None else f"{trace_id}-{parent}",
        "start_time": begin,
        "end_time": begin + timedelta(milliseconds=ms),
        "status_code": status,
        "status_message": message,
        "attributes": list(attributes.items()),
        "events": events,
    }


def assessment(name: str, source: str, value: Any, error: str | None = None) -> dict[str, Any]:
    return {
        "assessment_id": f"a-{name}-{source}",
        "name": name,
        "source": {"source_type": source, "source_id": "x"},
        "feedback": {"value": json.dumps(value), "error": error},
        "expectation": None,
        "rationale": "r",
        "metadata": [],
        "span_id": None,
    }


def trace(
    n: int,
    state: str,
    ms: int,
    request: Any,
    response: Any,
    spans: list[dict[str, Any]],
    assessments: list[dict[str, Any]] | None = None,
    day: int = 0,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    tid = f"tr-{n}"
    return {
        "trace_id": tid,
        "client_request_id": None,
        "request_time": T0 + timedelta(days=day, minutes=n),
        "state": state,
        "execution_duration_ms": ms,
        "request": json.dumps(request),
        "response": None if response is None else json.dumps(response),
        "request_preview": json.dumps(request)[:100],
        "response_preview": None,
        "trace_metadata": [("mlflow.trace.user", f"user-{n % 2}")],
        "tags": list({"mlflow.traceName": "agent", **(tags or {})}.items()),
        "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}},
        "spans": [
            span(tid, "root", "AGENT", 0, ms, state, parent=None),
            *[s | {"trace_id": tid, "span_id": f"{tid}-{s['name']}", "parent_id": f"{tid}-root"} for s in spans],
        ],
        "assessments": assessments or [],
    }


ROWS = [
    trace(
        1,
        "OK",
        1200,
        {"question": "find flights"},
        {"answer": "Here are 3 flights"},
        [span("", "search", "TOOL", 10, 300)],
        [assessment("thumbs", "HUMAN", True)],
    ),
    trace(
        2,
        "ERROR",
        10000,
        {"question": "find hotels"},
        None,
        [span("", "search", "TOOL", 10, 9500, "ERROR", "search timed out", exception="TimeoutError: 9.5s")],
    ),
    trace(
        3,
        "OK",
        800,
        {"question": "refund?"},
        {"answer": "I'm sorry, I am not sure about refunds"},
        [
            span(
                "",
                "llm",
                "CHAT_MODEL",
                5,
                700,
                extra={"mlflow.chat.tokenUsage": {"input_tokens": 100, "output_tokens": 20}},
            )
        ],
        [assessment("thumbs", "HUMAN", False), assessment("relevance", "LLM_JUDGE", "yes")],
    ),
    trace(
        4,
        "OK",
        2000,
        {"question": "book it"},
        {"answer": "Booked"},
        [span("", "book", "TOOL", 10, 900), span("", "search", "TOOL", 950, 400)],
        day=1,
        tags={"env": "prod"},
    ),
    trace(5, "ERROR", 300, {"question": "again"}, None, [], day=1),
    trace(
        6,
        "OK",
        5000,
        {"messages": [{"role": "user", "content": "hi"}]},
        "",
        [
            span(
                "",
                "llm",
                "CHAT_MODEL",
                5,
                4900,
                extra={"mlflow.chat.tokenUsage": {"input_tokens": 50, "output_tokens": 0}},
            )
        ],
        [assessment("relevance", "LLM_JUDGE", None, error="judge crashed")],
        day=1,
    ),
]
ROWS[4]["spans"][0]["status_message"] = "rate limit exceeded (429)"


def build(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.register("rows", pa.Table.from_pylist(ROWS, schema=SCHEMA))
        con.execute("CREATE TABLE traces AS SELECT * FROM rows")
    return path
