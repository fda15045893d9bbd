"""The one graph factory: the workflow's phases as a LangGraph state machine."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from analyze_experiment.agent.core import failpoints
from analyze_experiment.graphs.approval import approve_description, approve_hypotheses, approve_issues
from analyze_experiment.graphs.context import AnalysisContext
from analyze_experiment.graphs.nodes.census import census
from analyze_experiment.graphs.nodes.describe import describe
from analyze_experiment.graphs.nodes.hypothesize import hypothesize, record_hypotheses
from analyze_experiment.graphs.nodes.issue import issue
from analyze_experiment.graphs.nodes.report import report
from analyze_experiment.graphs.nodes.setup import setup
from analyze_experiment.graphs.nodes.test import test_hypothesis
from analyze_experiment.graphs.routes import route_issue_approval, route_tests
from analyze_experiment.graphs.state import AnalysisState

# The node after which a phase begins: a thread stopped between steps (Ctrl-C, a crash) with no next
# step recorded carries on from there. Every key names a node whose outgoing edge is static (routers need
# the runtime context, which a state update does not have); testing restarts at `dispatch_tests`, whose
# router skips hypotheses already tested, and issues restart at the idempotent issue node.
RESUME_AFTER = {"describe": "setup", "approve_description": "describe", "census": "approve_description",
                "hypothesize": "census", "record_hypotheses": "hypothesize",
                "approve_hypotheses": "record_hypotheses", "test": "approve_hypotheses",
                "approve_issues": "test_hypothesis", "report": "approve_issues"}  # fmt: skip


def dispatch_tests(state: AnalysisState) -> dict[str, Any]:
    """A step of its own so a resumed thread can re-enter testing without re-asking for approval."""
    return {}


NODES: dict[str, Callable[..., Any]] = {
    "setup": setup, "describe": describe, "approve_description": approve_description, "census": census,
    "hypothesize": hypothesize, "record_hypotheses": record_hypotheses, "approve_hypotheses": approve_hypotheses,
    "dispatch_tests": dispatch_tests, "test_hypothesis": test_hypothesis, "issue": issue,
    "approve_issues": approve_issues, "report": report,
}  # fmt: skip


AnalysisGraph = CompiledStateGraph[AnalysisState, AnalysisContext, AnalysisState, AnalysisState]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> AnalysisGraph:
    """The workflow, compiled; the session passes its SQLite checkpointer, LangGraph's server its own."""
    graph = StateGraph(AnalysisState, context_schema=AnalysisContext)
    for name, node in NODES.items():
        graph.add_node(name, _marked(name, node))
    graph.add_edge(START, "setup")
    graph.add_edge("setup", "describe")
    graph.add_edge("describe", "approve_description")
    graph.add_edge("approve_description", "census")
    graph.add_edge("census", "hypothesize")
    graph.add_edge("hypothesize", "record_hypotheses")
    graph.add_edge("record_hypotheses", "approve_hypotheses")
    graph.add_edge("approve_hypotheses", "dispatch_tests")
    graph.add_conditional_edges("dispatch_tests", route_tests, ["test_hypothesis", "issue"])
    graph.add_edge("test_hypothesis", "issue")
    graph.add_conditional_edges("issue", route_issue_approval, ["approve_issues", "report"])
    graph.add_edge("approve_issues", "report")
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)


def _marked(name: str, node: Callable[..., Any]) -> Callable[..., Any]:
    """The node, run inside `failpoints.inside(name)` so crash tests can aim at one phase."""

    @functools.wraps(node)
    def run(*args: Any, **kwargs: Any) -> Any:
        with failpoints.inside(name):
            return node(*args, **kwargs)

    return run


graph = build_graph()  # what `langgraph dev` and LangGraph Studio load (langgraph.json)
