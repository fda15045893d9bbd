"""The agent-facing tools as LangChain tools, for a chat model testing one hypothesis.

Every tool returns text the model can act on, including errors ("error: ..." with what to do). The
catalog has no tool that runs code, writes as a person, or touches another hypothesis.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from langchain_core.messages import ToolCall
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, ValidationError

from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.agent.core.insights.models import Evidence, HypothesisStatus
from analyze_experiment.tools.budget import BudgetExhausted
from analyze_experiment.tools.protocols import AnalysisTools

RESULT_CHARS = 6000
_ORDERED = re.compile(r"\border\s+by\b", re.IGNORECASE)
_FENCE = re.compile(r"<(/?trace_data)", re.IGNORECASE)


class SearchArgs(BaseModel):
    filter_string: str | None = Field(default=None, description="MLflow trace filter, e.g. trace.status = 'ERROR'")
    max_results: int = Field(default=10, ge=1, le=50)


class TraceArgs(BaseModel):
    trace_id: str


class SqlArgs(BaseModel):
    query: str = Field(description="One Databricks SQL SELECT over the `traces` table.")


class EvidenceArgs(BaseModel):
    trace_id: str
    rationale: str = Field(min_length=1, max_length=2000)
    supports: bool


class ConcludeArgs(BaseModel):
    status: Literal["VALIDATED", "REJECTED", "INCONCLUSIVE"]
    reason: str = Field(min_length=1, max_length=2000, description="The numbers that decided it.")


class Conclusion(BaseModel):
    status: HypothesisStatus | None
    reason: str
    evidence: list[Evidence]


class TestSession:
    """One hypothesis under test: the traces the model has seen, the evidence it recorded, its verdict."""

    def __init__(self, tools: AnalysisTools) -> None:
        self.tools = tools
        self.seen: set[str] = set()
        self.evidence: list[Evidence] = []
        self.concluded: Conclusion | None = None
        self.spent = False

    def run(self, catalog: dict[str, BaseTool], call: ToolCall) -> str:
        tool = catalog.get(call["name"])
        if tool is None:
            return f"error: there is no tool named {call['name']!r}; use one of {', '.join(sorted(catalog))}"
        try:
            return str(tool.invoke(call["args"]))
        except BudgetExhausted as spent:
            self.spent = True
            return f"error: {spent}; call conclude now"
        except ValidationError as invalid:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors()[:3])
            return f"error: invalid arguments for {call['name']}: {problems}"
        except UserError as refused:
            return f"error: {self.tools.redact(refused.message)}"

    def stop(self, status: HypothesisStatus | None, reason: str) -> Conclusion:
        return Conclusion(status=status, reason=reason, evidence=list(self.evidence))

    # -- the tools --------------------------------------------------------------------------------

    def search_traces(self, filter_string: str | None = None, max_results: int = 10) -> str:
        found = self.tools.search_traces(filter_string, max_results)
        self.seen.update(t.trace_id for t in found)
        return _clip(json.dumps([t.model_dump() for t in found], default=str))

    def get_trace(self, trace_id: str) -> str:
        read = self.tools.get_trace(trace_id)
        self.seen.add(read.trace_id)
        body = read.model_dump(exclude={"tags", "metadata"})
        return _fenced(json.dumps(body, default=str))

    def execute_sql(self, query: str) -> str:
        result = self.tools.execute_sql(query, max_rows=100)
        self.seen.update(result.trace_ids())
        rows = result.records()
        if not _ORDERED.search(query):
            # Without ORDER BY a result has no order, and the table's physical order changes as it syncs:
            # a canonical order keeps what the model sees (and replayed evals) stable.
            rows.sort(key=lambda row: json.dumps(row, sort_keys=True, default=str))
        more = f" (+{result.rows_cut} more rows not shown)" if result.rows_cut else ""
        return _fenced(json.dumps(rows, default=str)) + more

    def record_evidence(self, trace_id: str, rationale: str, supports: bool) -> str:
        if trace_id not in self.seen:
            return f"error: {trace_id} has not come up in this test; cite a trace id returned by a tool"
        self.evidence.append(Evidence(trace_id=trace_id, rationale=rationale, supports=supports))
        return f"recorded ({len(self.evidence)} evidence entries)"

    def conclude(self, status: str, reason: str) -> str:
        if status == "INCONCLUSIVE":
            self.concluded = self.stop(None, reason)
            return "noted: left TESTING"
        target = HypothesisStatus(status)
        direction = target is HypothesisStatus.VALIDATED
        if not any(e.supports is direction for e in self.evidence):
            kind = "supporting" if direction else "refuting"
            return f"error: {status} needs at least one {kind} evidence entry; call record_evidence first"
        self.concluded = self.stop(target, reason)
        return f"concluded {status}"


def test_tools(session: TestSession) -> list[BaseTool]:
    def make(func: Any, args: type[BaseModel], description: str) -> BaseTool:
        return StructuredTool.from_function(func=func, name=func.__name__, description=description, args_schema=args)

    return [
        make(session.search_traces, SearchArgs, "Search traces with an MLflow filter; returns summaries."),
        make(session.get_trace, TraceArgs, "Read one trace: request, response, spans, assessments."),
        make(session.execute_sql, SqlArgs, "Run one SELECT over the traces table; returns up to 100 rows."),
        make(session.record_evidence, EvidenceArgs, "Record a trace as evidence for or against the hypothesis."),
        make(session.conclude, ConcludeArgs, "Finish the test: VALIDATED, REJECTED or INCONCLUSIVE, with the numbers."),
    ]


def _fenced(text: str) -> str:
    """Trace text inside the data fence; text that tries to close the fence early is defused."""
    return "<trace_data>" + _clip(_FENCE.sub(r"<\\\1", text)) + "</trace_data>"


def _clip(text: str) -> str:
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + f"... [{len(text) - RESULT_CHARS} chars cut]"
