"""A scripted analyst model, in OpenAI's wire format: what a local OpenAI-compatible server (and the
scripted chat model) answer. It makes the mistakes real models make: an invalid structured answer
first, a call to a tool that does not exist, arguments that do not validate."""

from __future__ import annotations

import json
import re
from typing import Any

HYPOTHESES = [
    {
        "statement": "failed traces share one failing tool",
        "category": "operational",
        "rationale": "census Q1 shows failures",
        "testing_plan": "select failed traces and read them",
        "sql": "SELECT trace_id FROM traces WHERE state = 'ERROR'",
    },
    {
        "statement": "answers apologise for refunds",
        "category": "quality",
        "rationale": "census Q10 markers",
        "testing_plan": "select apologetic answers",
        "sql": "SELECT trace_id FROM traces WHERE response rlike '(?i)sorry'",
    },
]


def _call(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ],
    }


def respond(messages: list[dict[str, Any]], tools: list[str], n: int) -> dict[str, Any]:
    """The next assistant message, given the conversation so far and the offered tool names."""
    text = "\n".join(str(m.get("content") or "") for m in messages)
    asked_again = "not valid" in text
    if "Description" in tools:
        if not asked_again:
            return _call("Description", {"summary": "wrong field"}, n)  # invalid: re-asked with the error
        return _call("Description", {"description": "A customer support assistant that looks up orders."}, n)
    if "Hypotheses" in tools:
        return _call("Hypotheses", {"hypotheses": HYPOTHESES}, n)
    if "IssueAnswer" in tools:
        ids = re.findall(r"- (tr-[0-9a-f]+):", text)
        return _call(
            "IssueAnswer",
            {
                "title": "Stop the failing tool breaking requests",
                "description": "Failures measured by SQL.",
                "severity": "HIGH",
                "evidence_trace_ids": ids[:2],
            },
            n,
        )
    if "Recommendations" in tools:
        return _call("Recommendations", {"items": ["I1: add a timeout and a fallback"]}, n)
    return _test_step(messages, text, n)


def _test_step(messages: list[dict[str, Any]], text: str, n: int) -> dict[str, Any]:
    step = sum(1 for m in messages if m.get("role") == "tool")
    sql = re.search(r"Its SQL \(Q1\): (.*)", text)
    if step == 0:
        return _call("run_python", {"code": "print(1)"}, n)  # no such tool
    if step == 1:
        return _call("execute_sql", {"sql": "SELECT 1"}, n)  # wrong argument name
    if step == 2:
        return _call("execute_sql", {"query": sql[1] if sql else "SELECT trace_id FROM traces LIMIT 3"}, n)
    last = str(messages[-1].get("content") or "")
    found = re.findall(r"tr-[0-9a-f]{32}", last)
    if step == 3 and found:
        return _call("record_evidence", {"trace_id": found[0], "rationale": "selected by Q1", "supports": True}, n)
    if step == 3:
        return _call("conclude", {"status": "INCONCLUSIVE", "reason": "Q1 selects no traces"}, n)
    return _call("conclude", {"status": "VALIDATED", "reason": "Q1 selects the traces"}, n)
