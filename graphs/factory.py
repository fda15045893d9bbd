"""The one graph factory: the workflow's phases as a LangGraph state machine."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar, get_args

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from analyze_experiment.agent.core import failpoints
from analyze_experiment.graphs.approval import approve_description, approve_hypotheses, approve_issues
from analyze_experiment.graphs.context import AnalysisContext, NodeContext
from analyze_experiment.graphs.nodes.census import census
from analyze_experiment.graphs.nodes.describe import describe
from analyze_experiment.graphs.nodes.hypothesize import hypothesize, record_hypotheses
from analyze_experiment.graphs.nodes.issue import issue
from analyze_experiment.graphs.nodes.report import report
from analyze_experiment.graphs.nodes.setup import setup
from analyze_experiment.graphs.nodes.test import test_hypothesis
from analyze_experiment.graphs.routes import route_issue_approval, route_tests
from analyze_experiment.graphs.state import AnalysisState, Phase

S = TypeVar("S")
R = TypeVar("R")


def dispatch_tests(state: AnalysisState) -> AnalysisState:
    """A step of its own so a resumed thread can re-enter testing without re-asking for approval."""
    return {}


def without_decisions(node: Callable[[S, Runtime[NodeContext]], R]) -> Callable[[S, Runtime[AnalysisContext]], R]:
    """The node, given a `NodeContext`: only the approval nodes see the person's decisions."""

    @functools.wraps(node)
    def narrowed(state: S, runtime: Runtime[AnalysisContext]) -> R:
        widened: Runtime[Any] = runtime  # `replace` keeps the context's type; this one changes it
        return node(state, replace(widened, context=runtime.context.for_nodes()))

    return narrowed


NODES: dict[str, Callable[..., Any]] = {
    "setup": without_decisions(setup),
    "describe": without_decisions(describe),
    "approve_description": approve_description,
    "census": without_decisions(census),
    "hypothesize": without_decisions(hypothesize),
    "record_hypotheses": without_decisions(record_hypotheses),
    "approve_hypotheses": approve_hypotheses,
    "dispatch_tests": dispatch_tests,
    "test_hypothesis": without_decisions(test_hypothesis),
    "issue": without_decisions(issue),
    "approve_issues": approve_issues,
    "report": without_decisions(report),
}
EDGES: list[tuple[str, str]] = [
    (START, "setup"),
    ("setup", "describe"),
    ("describe", "approve_description"),
    ("approve_description", "census"),
    ("census", "hypothesize"),
    ("hypothesize", "record_hypotheses"),
    ("record_hypotheses", "approve_hypotheses"),
    ("approve_hypotheses", "dispatch_tests"),
    ("test_hypothesis", "issue"),
    ("approve_issues", "report"),
    ("report", END),
]
# node -> (router, where it may go)
BRANCHES: dict[str, tuple[Callable[..., Any], list[str]]] = {
    "dispatch_tests": (without_decisions(route_tests), ["test_hypothesis", "issue"]),
    "issue": (without_decisions(route_issue_approval), ["approve_issues", "report"]),
}
FIRST_NODE: dict[Phase, str] = {phase: phase for phase in get_args(Phase) if phase in NODES} | {
    "test": "dispatch_tests"
}


def resume_after(phase: Phase) -> str:
    """The node after which `phase` begins, for a thread stopped between steps (Ctrl-C, a crash) with no
    next step recorded. LangGraph resumes as if that node had just run, and only a static edge can be
    followed that way (a router needs the runtime context, which a state update lacks): a phase entered
    only through a router begins again at the router's node, which is safe to repeat."""
    target = FIRST_NODE[phase]
    while True:
        static = [source for source, destination in EDGES if destination == target]
        if static:
            return static[0]
        target = next(node for node, (_, destinations) in BRANCHES.items() if target in destinations)


RESUME_AFTER: dict[Phase, str] = {phase: resume_after(phase) for phase in FIRST_NODE if phase != "setup"}

AnalysisGraph = CompiledStateGraph[AnalysisState, AnalysisContext, AnalysisState, AnalysisState]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> AnalysisGraph:
    """The workflow, compiled; the session passes its SQLite checkpointer, LangGraph's server its own."""
    graph = StateGraph(AnalysisState, context_schema=AnalysisContext)
    for name, node in NODES.items():
        graph.add_node(name, _marked(name, node))
    for source, destination in EDGES:
        graph.add_edge(source, destination)
    for source, (router, destinations) in BRANCHES.items():
        graph.add_conditional_edges(source, router, destinations)
    return graph.compile(checkpointer=checkpointer)


def _marked(name: str, node: Callable[..., Any]) -> Callable[..., Any]:
    """The node, run inside `failpoints.inside(name)` so crash tests can aim at one phase."""

    @functools.wraps(node)
    def run(*args: Any, **kwargs: Any) -> Any:
        with failpoints.inside(name):
            return node(*args, **kwargs)

    return run


graph = build_graph()  # what `langgraph dev` and LangGraph Studio load (langgraph.json)
