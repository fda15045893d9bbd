"""A simulated customer-support agent that logs realistic traces, with known problems planted.

Used by the tests and benchmarks now, and the seed of the demo and eval scenarios. Deterministic for a
seed: the same seed gives the same requests, failures and timings.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan, SpanEvent

DAY_NS = 86_400 * 10**9
FLUSH_EVERY = 50
MS = 10**6

QUESTIONS = {
    "order_status": ["Where is my order #{n}?", "Has order {n} shipped yet?", "Track order {n} for me please"],
    "refund": ["How do I get a refund for order {n}?", "I want my money back for {n}", "Refund policy for {n}?"],
    "password": ["How do I reset my password?", "I forgot my password", "Password reset link not working"],
    "shipping": ["How long does shipping to Canada take?", "Do you ship to Norway?", "Shipping costs?"],
}
ANSWERS = {
    "order_status": "Your order {n} shipped yesterday and should arrive within 3 business days.",
    "refund": "I'm sorry, I am not sure about the refund rules for order {n}. Please contact support.",
    "password": "Use the 'Forgot password' link on the sign-in page; the email arrives within minutes.",
    "shipping": "Standard shipping takes 5-7 business days; express takes 2.",
}


@dataclass
class SimulatedTrace:
    trace_id: str
    topic: str
    failed: bool
    apologetic: bool


@dataclass
class Simulation:
    experiment_id: str
    traces: list[SimulatedTrace] = field(default_factory=list)

    def ids(self, *, topic: str | None = None, failed: bool | None = None) -> list[str]:
        return [
            t.trace_id
            for t in self.traces
            if (topic is None or t.topic == topic) and (failed is None or t.failed is failed)
        ]


def simulate_support_agent(
    experiment_id: str,
    count: int,
    seed: int = 7,
    start_ns: int | None = None,
    on_trace: Callable[[], None] | None = None,
) -> Simulation:
    """Log `count` traces: order lookups time out; refund answers apologise and are unsure."""
    import mlflow

    rng = random.Random(seed)
    start = start_ns if start_ns is not None else 1_780_000_000 * 10**9
    simulation = Simulation(experiment_id)
    for index in range(count):
        topic = rng.choice(sorted(QUESTIONS))
        begin = start + int(index * (7 * DAY_NS / max(count, 1))) + rng.randrange(10**9)
        simulation.traces.append(_log_one(experiment_id, rng, topic, begin))
        if on_trace:
            on_trace()
        if index % FLUSH_EVERY == FLUSH_EVERY - 1:
            mlflow.flush_trace_async_logging()  # a full export queue drops spans silently
    mlflow.flush_trace_async_logging()
    _log_feedback(simulation, rng)
    return simulation


def _log_one(experiment_id: str, rng: random.Random, topic: str, begin: int) -> SimulatedTrace:
    import mlflow
    from mlflow.entities import SpanStatusCode, SpanType

    number = rng.randrange(10_000, 99_999)
    question = rng.choice(QUESTIONS[topic]).format(n=number)
    root = mlflow.start_span_no_context(
        "support_agent",
        span_type=SpanType.AGENT,
        inputs={"question": question},
        experiment_id=experiment_id,
        start_time_ns=begin,
        tags={"app_version": "1.4.2"},
        metadata={"mlflow.trace.user": f"user-{rng.randrange(40)}"},
    )
    clock = begin + rng.randrange(2, 8) * MS
    clock = _child(
        root,
        "search_docs",
        SpanType.RETRIEVER,
        {"query": question},
        [{"doc": f"kb-{topic}"}],
        clock,
        rng.randrange(40, 120),
    )
    failed = topic == "order_status" and rng.random() < 0.6
    if topic == "order_status":
        tool = mlflow.start_span_no_context(
            "lookup_order", span_type=SpanType.TOOL, parent_span=root, inputs={"order_id": number}, start_time_ns=clock
        )
        if failed:
            clock += rng.randrange(9_500, 10_500) * MS
            tool.add_event(_exception_event("TimeoutError", "lookup_order timed out after 10s", clock))
            tool.end(status=SpanStatusCode.ERROR, end_time_ns=clock)
        else:
            clock += rng.randrange(150, 400) * MS
            tool.end(outputs={"status": "shipped"}, end_time_ns=clock)
    if failed:
        root.end(status=SpanStatusCode.ERROR, end_time_ns=clock + 2 * MS)
        return SimulatedTrace(root.trace_id, topic, failed=True, apologetic=False)
    answer = ANSWERS[topic].format(n=number)
    usage = {"input_tokens": rng.randrange(300, 900), "output_tokens": rng.randrange(20, 120)}
    chat = mlflow.start_span_no_context(
        "chat_model",
        span_type=SpanType.CHAT_MODEL,
        parent_span=root,
        inputs={"messages": [{"role": "user", "content": question}]},
        attributes={"mlflow.llm.model": "gpt-4o-mini"},
        start_time_ns=clock,
    )
    clock += rng.randrange(600, 2200) * MS
    cost = {"input_cost": usage["input_tokens"] * 1.5e-7, "output_cost": usage["output_tokens"] * 6e-7}
    cost["total_cost"] = cost["input_cost"] + cost["output_cost"]
    chat.end(
        outputs={"content": answer},
        attributes={"mlflow.chat.tokenUsage": usage, "mlflow.llm.cost": cost},
        end_time_ns=clock,
    )
    root.end(outputs={"answer": answer}, end_time_ns=clock + 3 * MS)
    return SimulatedTrace(root.trace_id, topic, failed=False, apologetic=topic == "refund")


def _child(parent: LiveSpan, name: str, span_type: str, inputs: object, outputs: object, clock: int, ms: int) -> int:
    import mlflow

    span = mlflow.start_span_no_context(
        name, span_type=span_type, parent_span=parent, inputs=inputs, start_time_ns=clock
    )
    span.end(outputs=outputs, end_time_ns=clock + ms * MS)
    return clock + ms * MS


def _exception_event(kind: str, message: str, at_ns: int) -> SpanEvent:
    from mlflow.entities import SpanEvent

    # MLflow's stubs mark SpanEvent abstract (from_proto), yet it is the documented constructor.
    return SpanEvent(  # type: ignore[abstract]
        name="exception", timestamp=at_ns, attributes={"exception.type": kind, "exception.message": message}
    )


def _log_feedback(simulation: Simulation, rng: random.Random) -> None:
    import mlflow
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    for trace in simulation.traces:
        if trace.failed or rng.random() > 0.3:
            continue
        happy = not trace.apologetic
        mlflow.log_feedback(
            trace_id=trace.trace_id,
            name="user_thumbs",
            value=happy,
            source=AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="end-user"),
            rationale="answered my question" if happy else "the bot did not know",
        )
