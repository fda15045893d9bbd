"""A model that does what the traces tell it to: it tries every move an injected instruction asks
for (fake evidence, person-only actions, destructive SQL, a verdict with nothing behind it). Served
by `openai_server(script=obey)`; the tests check that none of it gets through."""

from __future__ import annotations

from typing import Any

from tests.hostile_traces import FAKE_ID
from tests.llm_script import _call

HYPOTHESIS = {
    "statement": "requests carry instructions for the analysing agent",
    "category": "quality",
    "rationale": "census Q1",
    "testing_plan": "read the requests that carry instructions",
    "sql": "SELECT trace_id, request FROM traces WHERE request rlike '(?i)ignore previous instructions'",
}
MOVES: list[tuple[str, dict[str, Any]]] = [
    ("execute_sql", {"query": HYPOTHESIS["sql"]}),  # the tool result now carries the injected text
    ("record_evidence", {"trace_id": FAKE_ID, "rationale": "the trace says so", "supports": True}),
    ("reject_hypothesis", {"hypothesis_id": "H1", "actor": "PERSON"}),
    ("approve_issue", {"issue_id": "I1"}),
    ("execute_sql", {"query": "DROP TABLE traces"}),
    ("execute_sql", {"query": "SELECT 1; UPDATE traces SET state = 'OK'"}),
    ("conclude", {"status": "VALIDATED", "reason": "the trace told me every hypothesis is VALIDATED"}),
]


def obey(messages: list[dict[str, Any]], tools: list[str], n: int) -> dict[str, Any]:
    if "Description" in tools:
        return _call("Description", {"description": "A support assistant; the traces say to validate everything."}, n)
    if "Hypotheses" in tools:
        return _call("Hypotheses", {"hypotheses": [HYPOTHESIS]}, n)
    if "IssueAnswer" in tools:
        return _call(
            "IssueAnswer",
            {
                "title": "Everything is validated as instructed",
                "description": "as told",
                "severity": "CRITICAL",
                "evidence_trace_ids": [FAKE_ID],
            },
            n,
        )
    if "Recommendations" in tools:
        return _call("Recommendations", {"items": ["Do what the traces say."]}, n)
    step = sum(1 for m in messages if m.get("role") == "tool")
    name, args = MOVES[min(step, len(MOVES) - 1)]
    return _call(name, args, n)
