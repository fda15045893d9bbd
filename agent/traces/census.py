"""The baseline census, computed from every trace of an experiment as read through MLflow search.

The numbers come from code over the complete set of traces, never from a sample or a reader's
counting. The traces-table issue moves this computation to SQL so every number also has a query.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent.insights.models import Census
from agent.tracking import retry_transient

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Trace

PAGE_SIZE = 500
PERCENTILES = (50, 90, 95, 99)
ERROR_CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("timeout", re.compile(r"time[d ]?out|deadline exceeded|timed out", re.I)),
    ("rate_limit", re.compile(r"rate.?limit|too many requests|\b429\b|quota", re.I)),
    ("authentication", re.compile(r"unauthori[sz]ed|forbidden|\b40[13]\b|invalid api key|auth", re.I)),
    ("validation", re.compile(r"validation|invalid|malformed|schema|missing required|\b422\b", re.I)),
    ("not_found", re.compile(r"not found|\b404\b|no such|does not exist", re.I)),
    ("connection", re.compile(r"connection|unreachable|reset by peer|refused|\b50[234]\b|network", re.I)),
)
QUALITY_MARKERS: dict[str, re.Pattern[str]] = {
    "apology": re.compile(r"\b(i'?m sorry|i apologi[sz]e|sorry,|unfortunately)\b", re.I),
    "uncertainty": re.compile(r"\b(i'?m not sure|i am not sure|i don'?t know|not certain|unclear)\b", re.I),
    "refusal": re.compile(r"\b(i can(?:no|')t help|i am unable|i'?m unable|i cannot assist)\b", re.I),
}
DURATION_BUCKETS_MS = ((0, 1000, "<1s"), (1000, 5000, "1-5s"), (5000, 10000, "5-10s"), (10000, 30000, "10-30s"))


def iter_traces(client: MlflowClient, experiment_id: str) -> Iterator[Trace]:
    token: str | None = None
    while True:
        page = retry_transient(client.search_traces)(
            locations=[experiment_id], max_results=PAGE_SIZE, page_token=token, include_spans=True
        )
        yield from page
        token = page.token
        if not token:
            return


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default, DuckDB's quantile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


def percentiles(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}": percentile(values, q) for q in PERCENTILES}


def classify_error(message: str) -> str:
    for name, pattern in ERROR_CLASSES:
        if pattern.search(message):
            return name
    return "other"


def duration_bucket(ms: float) -> str:
    for low, high, label in DURATION_BUCKETS_MS:
        if low <= ms < high:
            return label
    return ">=30s"


def compute_census(traces: Iterable[Trace], on_trace: Callable[[], None] | None = None) -> Census:
    acc = _Accumulator()
    for trace in traces:
        acc.add(trace)
        if on_trace:
            on_trace()
    return acc.census()


class _Accumulator:
    def __init__(self) -> None:
        self.states: Counter[str] = Counter()
        self.durations: list[float] = []
        self.ok_durations: list[float] = []
        self.error_durations: list[float] = []
        self.names: Counter[str] = Counter()
        self.spans: dict[str, list[tuple[float, bool]]] = defaultdict(list)
        self.tools: dict[str, list[tuple[float, bool]]] = defaultdict(list)
        self.error_classes: Counter[str] = Counter()
        self.error_examples: dict[str, str] = {}
        self.duration_by_state: Counter[tuple[str, str]] = Counter()
        self.markers: Counter[str] = Counter()
        self.empty_responses = 0
        self.response_lengths: list[float] = []
        self.assessments: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.days: Counter[str] = Counter()
        self.first: int | None = None
        self.last: int | None = None
        self.tokens: Counter[str] = Counter()

    def add(self, trace: Trace) -> None:
        info = trace.info
        state = str(getattr(info.state, "value", info.state))
        self.states[state] += 1
        duration = float(info.execution_duration or 0)
        self.durations.append(duration)
        (self.ok_durations if state == "OK" else self.error_durations).append(duration)
        self.duration_by_state[(state, duration_bucket(duration))] += 1
        self.names[info.tags.get("mlflow.traceName", "(unnamed)")] += 1
        self.first = info.request_time if self.first is None else min(self.first, info.request_time)
        self.last = info.request_time if self.last is None else max(self.last, info.request_time)
        self.days[datetime.fromtimestamp(info.request_time / 1000, tz=UTC).date().isoformat()] += 1
        self._add_spans(trace, state)
        if state == "OK":
            self._add_response(info.response_preview, trace)
        self._add_assessments(info.assessments or [])

    def _add_spans(self, trace: Trace, state: str) -> None:
        messages: list[str] = []
        for span in trace.data.spans:
            failed = str(getattr(span.status.status_code, "value", span.status.status_code)) == "ERROR"
            ms = (span.end_time_ns - span.start_time_ns) / 1e6 if span.end_time_ns else 0.0
            self.spans[span.name].append((ms, failed))
            if span.span_type == "TOOL":
                self.tools[span.name].append((ms, failed))
            if failed:
                events = [e for e in span.events if e.name == "exception"]
                messages += [str(e.attributes.get("exception.message", "")) for e in events]
                messages.append(span.status.description or "")
            usage = (span.attributes or {}).get("mlflow.chat.tokenUsage")
            if isinstance(usage, dict):
                for key, value in usage.items():
                    if isinstance(value, int | float):
                        self.tokens[key] += int(value)
        if state == "ERROR":
            text = " | ".join(m for m in messages if m) or "(no error message)"
            bucket = classify_error(text)
            self.error_classes[bucket] += 1
            self.error_examples.setdefault(bucket, text[:200])

    def _add_response(self, preview: str | None, trace: Trace) -> None:
        response = trace.data.response
        text = response if isinstance(response, str) else (preview or "")
        if not text or not str(text).strip() or str(text).strip() in {'""', "null", "{}"}:
            self.empty_responses += 1
        self.response_lengths.append(float(len(str(text))))
        for name, pattern in QUALITY_MARKERS.items():
            if pattern.search(str(text)):
                self.markers[name] += 1

    def _add_assessments(self, assessments: list[Any]) -> None:
        for assessment in assessments:
            source = str(getattr(assessment.source, "source_type", "UNKNOWN"))
            counts = self.assessments[(assessment.name, source)]
            counts["total"] += 1
            feedback = getattr(assessment, "feedback", None)
            if feedback is None:
                continue
            if getattr(feedback, "error", None) is not None:
                counts["errors"] += 1
            value = feedback.value
            if value is True or str(value).lower() in {"yes", "pass", "true", "1", "thumbs_up"}:
                counts["pass"] += 1
            elif value is False or str(value).lower() in {"no", "fail", "false", "0", "thumbs_down"}:
                counts["fail"] += 1

    def census(self) -> Census:
        total = sum(self.states.values())
        errors = self.states.get("ERROR", 0)
        long_tail = percentile(self.response_lengths, 95)
        return Census(
            trace_count=total,
            ok_count=self.states.get("OK", 0),
            error_count=errors,
            error_rate=round(errors / total, 6) if total else 0.0,
            latency_ms=percentiles(self.durations),
            sections={
                "method": "mlflow-search over every trace of the experiment",
                "states": dict(self.states),
                "latency_ok_ms": percentiles(self.ok_durations),
                "latency_error_ms": percentiles(self.error_durations),
                "trace_names": dict(self.names.most_common()),
                "spans": _span_table(self.spans),
                "tools": _span_table(self.tools),
                "error_buckets": {
                    "by_class": dict(self.error_classes.most_common()),
                    "examples": self.error_examples,
                    "by_duration": _by_duration(self.duration_by_state),
                },
                "quality_markers": {
                    **{name: self.markers.get(name, 0) for name in QUALITY_MARKERS},
                    "empty_ok_responses": self.empty_responses,
                    "response_length_chars": {
                        k: v for k, v in percentiles(self.response_lengths).items() if k != "p90"
                    },
                    "long_tail_count": sum(1 for n in self.response_lengths if long_tail and n > long_tail),
                },
                "assessments": [
                    {"name": name, "source_type": source, **dict(counts)}
                    for (name, source), counts in sorted(self.assessments.items())
                ],
                "token_usage": dict(self.tokens),
                "time_range": {"first": _iso(self.first), "last": _iso(self.last)},
                "traffic_by_day": dict(sorted(self.days.items())),
            },
        )


def _span_table(spans: dict[str, list[tuple[float, bool]]]) -> list[dict[str, Any]]:
    rows = []
    for name, calls in spans.items():
        durations = [ms for ms, _ in calls]
        failures = sum(1 for _, failed in calls if failed)
        rows.append(
            {
                "name": name,
                "calls": len(calls),
                "errors": failures,
                "error_rate": round(failures / len(calls), 6),
                **{f"{k}_ms": v for k, v in percentiles(durations).items()},
            }
        )
    return sorted(rows, key=lambda row: (-row["calls"], row["name"]))


def _by_duration(counts: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
    labels = [label for _, _, label in DURATION_BUCKETS_MS] + [">=30s"]
    states = sorted({state for state, _ in counts})
    return [{"bucket": label, **{state: counts.get((state, label), 0) for state in states}} for label in labels]


def _iso(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat()
