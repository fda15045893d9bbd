"""A model that accepts the discovery engine's candidates as they are and tests each by running its
query and citing three of the traces it returns. Served by `openai_server(script=accept)`: with it,
the LLM analyst must recall what the offline analyst recalls."""

from __future__ import annotations

import re
from typing import Any

from tests.llm_script import _call

CANDIDATE = re.compile(r"^C\d+ \[(\w+)\] (.*)\n   rationale: (.*)\n   sql: (.*)$", re.M)
READS = 3


def accept(messages: list[dict[str, Any]], tools: list[str], n: int) -> dict[str, Any]:
    text = "\n".join(str(m.get("content") or "") for m in messages)
    if "Description" in tools:
        return _call("Description", {"description": "An assistant whose traces the engine has scanned."}, n)
    if "Hypotheses" in tools:
        return _call("Hypotheses", {"hypotheses": [_accepted(*found) for found in CANDIDATE.findall(text)]}, n)
    if "IssueAnswer" in tools:
        ids = re.findall(r"- (tr-[0-9a-f]+):", text)
        return _call(
            "IssueAnswer",
            {
                "title": "Fix the problem the engine found here",
                "severity": "HIGH",
                "description": "Measured by the engine's SQL.",
                "evidence_trace_ids": ids,
            },
            n,
        )
    if "Recommendations" in tools:
        return _call("Recommendations", {"items": ["Fix what the issues describe."]}, n)
    return _test_step(messages, text, n)


def _accepted(category: str, statement: str, rationale: str, sql: str) -> dict[str, Any]:
    return {
        "statement": statement,
        "rationale": rationale,
        "testing_plan": "accept the engine's test; read traces",
        "sql": sql,
        "category": None if category == "unknown" else category,
    }


def _test_step(messages: list[dict[str, Any]], text: str, n: int) -> dict[str, Any]:
    results = [str(m.get("content") or "") for m in messages if m.get("role") == "tool"]
    if not results:
        sql = re.search(r"Its SQL \(Q1\): (.*)", text)
        return _call("execute_sql", {"query": sql[1] if sql else "SELECT trace_id FROM traces LIMIT 3"}, n)
    found = list(dict.fromkeys(re.findall(r"tr-[0-9a-f]{32}", results[0])))[:READS]
    cited = len(results) - 1
    if cited < len(found):
        return _call("record_evidence", {"trace_id": found[cited], "rationale": "selected by Q1", "supports": True}, n)
    if not found:
        return _call("conclude", {"status": "INCONCLUSIVE", "reason": "Q1 selects no traces"}, n)
    return _call("conclude", {"status": "VALIDATED", "reason": "the engine's test holds; Q1 selects the traces"}, n)
