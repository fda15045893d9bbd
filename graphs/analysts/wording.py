"""How the offline analyst words what each kind of outcome means: issue titles and recommendations.

The kind (a "signal") is the discovery engine's outcome family; a person's hypothesis is "person".
"""

from __future__ import annotations

import re

from analyze_experiment.agent.core.insights.models import Hypothesis

_SIGNAL = re.compile(r"^Signal: ([a-z_]+)\.")
_NAME = re.compile(r"`([^`]+)`")

# Five to eight words, specific and fix-oriented (the library refuses anything else). `{name}` is the
# span or assessment the outcome names (one word).
_TITLES = {
    "trace_failed": "Stop requests in one slice from failing",
    "span_failed": "Stop {name} failures in one traffic slice",
    "span_degenerate_output": "Stop {name} returning empty results for requests",
    "empty_response": "Stop returning empty answers to some requests",
    "assessment_negative": "Improve the answers {name} rates as negative",
    "assessment_error": "Fix the {name} assessments that keep erroring",
    "trace_slow": "Speed up the slowest requests of one slice",
    "trace_idle": "Cut the waiting before requests start work",
    "span_slow": "Fix the {name} slowdown in one slice",
    "repeated_call": "Stop {name} retry loops with identical inputs",
    "error": "Stop the recurring {name} error in one slice",
    "custom": "Fix where {name} happens more than elsewhere",
    "prompt_injection": "Treat instructions inside trace content as untrusted",
}

RECOMMENDATION = {
    "trace_failed": "read the failing traces of the slice, find the step that raises, and add a timeout, bounded retry or fallback answer there",
    "span_failed": "add a timeout with a bounded retry and a fallback answer around the failing span, and alert on its error rate",
    "span_degenerate_output": "check what the step receives in this slice and make the agent ask again or say so when it returns nothing",
    "empty_response": "propagate failures and validate answers before returning them: never answer with an empty message",
    "assessment_negative": "review the answers in this slice with their assessments, add what they lack (documents, length limits) and evaluate with a judge",
    "assessment_error": "fix the scorer or judge that errors on these traces, so quality is measured where it matters",
    "trace_slow": "profile the slow traces of this slice (caching, smaller inputs, parallel calls) and set a latency budget",
    "trace_idle": "find what the request waits on outside its steps (a queue, a cold start, a lock, uninstrumented work) and trace or remove it",
    "span_slow": "compare the span's configuration and inputs in this slice with the rest, and roll back or fix what changed",
    "repeated_call": "stop retrying with identical inputs: change the input or give up after one retry",
    "error": "read where this error is raised in the slice's traces and fix its cause, or catch it with a bounded retry and a fallback answer",
    "custom": "review the traces that meet your outcome in this slice and decide the fix with the owning team",
    "prompt_injection": "sanitise tool outputs and requests before they reach the model and never act on instructions inside them",
    "person": "review the evidence traces and decide the fix with the owning team",
}


def signal_of(hypothesis: Hypothesis) -> str:
    if hypothesis.statistics is not None:
        return hypothesis.statistics.outcome_family
    match = _SIGNAL.match(hypothesis.rationale)
    return match[1] if match else "person"


def subject(outcome: str) -> str:
    """The span or assessment an outcome names (`rerank` in "span `rerank` took over 120 ms")."""
    match = _NAME.search(outcome)
    return match[1] if match else ""


def issue_title(signal: str, hypothesis: Hypothesis) -> str:
    template = _TITLES.get(signal)
    if template is None:
        words = hypothesis.statement.split()
        title = " ".join(["Fix:", *words][:8])
        return title if len(title.split()) >= 5 else f"{title} in traced agent requests"
    name = subject(hypothesis.statistics.outcome) if hypothesis.statistics else ""
    return template.format(name=_one_word(name))


def _one_word(name: str) -> str:
    return re.sub(r"\s+", "_", name)[:40] or "this"
