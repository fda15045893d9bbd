"""How the offline analyst words what each signal means: categories, issue titles, recommendations."""

from __future__ import annotations

from agent.insights.models import Category

CATEGORY = {
    "span_errors": Category.OPERATIONAL,
    "swallowed_errors": Category.OPERATIONAL,
    "latency_regression": Category.OPERATIONAL,
    "retry_loop": Category.OPERATIONAL,
    "error_burst": Category.OPERATIONAL,
    "error_cluster": Category.OPERATIONAL,
    "latency_tail": Category.OPERATIONAL,
    "empty_answers": Category.QUALITY,
    "apologies": Category.QUALITY,
    "overlong_answers": Category.QUALITY,
    "negative_feedback_path": Category.QUALITY,
    "prompt_injection": Category.QUALITY,
    "strength": Category.STRENGTH,
}

# Five to eight words, specific and fix-oriented (the library refuses anything else). `{name}` is the
# span the statement starts with.
_TITLES = {
    "span_errors": "Stop {name} failures from breaking user requests",
    "swallowed_errors": "Surface tool failures instead of empty answers",
    "empty_answers": "Stop returning empty answers to successful requests",
    "latency_regression": "Fix the {name} slowdown in the latest version",
    "apologies": "Ground the answers the agent apologises about",
    "overlong_answers": "Cap overlong answers that bury the reply",
    "negative_feedback_path": "Improve {name} answers that users rate negatively",
    "retry_loop": "Stop {name} retry loops with identical inputs",
    "prompt_injection": "Treat instructions inside trace content as untrusted",
    "error_burst": "Find the cause of the hourly failure burst",
    "error_cluster": "Fix the one error behind most failures",
    "latency_tail": "Speed up the span owning the latency tail",
}

RECOMMENDATION = {
    "span_errors": "add a timeout with a bounded retry and a fallback answer around the failing span, and alert on its error rate",
    "swallowed_errors": "propagate tool failures: mark the trace as failed or tell the user, never answer with an empty string",
    "empty_answers": "validate answers before returning them and fall back to a clarifying reply",
    "latency_regression": "compare the slowed span's configuration between the two app versions and roll back or fix the change",
    "apologies": "add the missing knowledge (documents, policies) for these requests to retrieval and evaluate with a judge",
    "overlong_answers": "bound the answer length in the prompt or with max_tokens, and check what inflates these answers",
    "negative_feedback_path": "review the answers produced through this path with the users' feedback and add an evaluation for it",
    "retry_loop": "stop retrying with identical inputs: change the input or give up after one retry",
    "prompt_injection": "sanitise tool outputs and requests before they reach the model and never act on instructions inside them",
    "error_burst": "correlate the burst window with deploys and dependency incidents",
    "error_cluster": "fix the single error behind most failures first",
    "latency_tail": "profile the dominant span in the slowest traces (caching, smaller inputs, parallel calls)",
    "person": "review the evidence traces and decide the fix with the owning team",
}


def issue_title(signal: str, statement: str) -> str:
    template = _TITLES.get(signal)
    words = statement.split()
    name = words[0] if words else "agent"
    if template is None:
        title = " ".join(["Fix:", *words][:8])
        return title if len(title.split()) >= 5 else f"{title} in traced agent requests"
    return template.format(name=name)
