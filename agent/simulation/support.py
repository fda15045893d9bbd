"""A customer-support assistant: order lookups time out; refund answers apologise and hedge.

Deterministic for a seed: the same seed gives the same requests, failures, timings and trace ids.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.simulation.tracejson import AssessmentDraft, TraceDraft
from agent.simulation.writer import write_traces

if TYPE_CHECKING:
    from mlflow import MlflowClient

DAY_NS = 86_400 * 10**9
START_NS = 1_780_000_000 * 10**9

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
    client: MlflowClient,
    experiment_id: str,
    count: int,
    seed: int = 7,
    start_ns: int = START_NS,
    on_traces: Callable[[int], None] | None = None,
) -> Simulation:
    rng = random.Random(seed)
    ids = random.Random(f"{experiment_id}:{seed}:{start_ns}")
    simulation = Simulation(experiment_id)
    drafts = []
    for index in range(count):
        topic = rng.choice(sorted(QUESTIONS))
        begin = start_ns + int(index * (7 * DAY_NS / max(count, 1))) + rng.randrange(10**9)
        draft, truth = _one(rng, ids, topic, begin)
        drafts.append(draft)
        simulation.traces.append(truth)
    written = write_traces(client, experiment_id, (d.to_dict(experiment_id) for d in drafts), on_traces)
    for truth, trace_id in zip(simulation.traces, written, strict=True):
        truth.trace_id = trace_id  # stores without batch writes mint their own ids
    return simulation


def _one(rng: random.Random, ids: random.Random, topic: str, begin: int) -> tuple[TraceDraft, SimulatedTrace]:
    number = rng.randrange(10_000, 99_999)
    question = rng.choice(QUESTIONS[topic]).format(n=number)
    trace = TraceDraft(rng, ids, "support_agent", begin, {"question": question})
    trace.tags["app_version"] = "1.4.2"
    trace.metadata["mlflow.trace.user"] = f"user-{rng.randrange(40)}"
    trace.child("search_docs", "RETRIEVER", rng.randrange(40, 120), {"query": question}, [{"doc": f"kb-{topic}"}])
    failed = topic == "order_status" and rng.random() < 0.6
    if topic == "order_status":
        if failed:
            trace.child("lookup_order", "TOOL", rng.randrange(9_500, 10_500), {"order_id": number},
                        error="lookup_order timed out after 10s",
                        exception="TimeoutError: lookup_order timed out after 10s")  # fmt: skip
            trace.finish(error="TimeoutError")
            return trace, SimulatedTrace(trace.trace_id, topic, failed=True, apologetic=False)
        trace.child("lookup_order", "TOOL", rng.randrange(150, 400), {"order_id": number}, {"status": "shipped"})
    answer = ANSWERS[topic].format(n=number)
    usage = {"input_tokens": rng.randrange(300, 900), "output_tokens": rng.randrange(20, 120)}
    cost = {"input_cost": usage["input_tokens"] * 1.5e-7, "output_cost": usage["output_tokens"] * 6e-7}
    cost["total_cost"] = cost["input_cost"] + cost["output_cost"]
    trace.child("chat_model", "CHAT_MODEL", rng.randrange(600, 2200),
                {"messages": [{"role": "user", "content": question}]}, {"content": answer},
                attributes={"mlflow.llm.model": "gpt-4o-mini", "mlflow.chat.tokenUsage": usage, "mlflow.llm.cost": cost})  # fmt: skip
    trace.finish({"answer": answer})
    apologetic = topic == "refund"
    if rng.random() < 0.3:
        trace.assessments.append(AssessmentDraft(
            "user_thumbs", not apologetic, "HUMAN", "end-user",
            rationale="answered my question" if not apologetic else "the bot did not know"))  # fmt: skip
    return trace, SimulatedTrace(trace.trace_id, topic, failed=False, apologetic=apologetic)
