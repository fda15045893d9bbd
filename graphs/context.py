"""What the graph's nodes are given through LangGraph's runtime context.

Nodes and routers get a `NodeContext`: a `ToolSource` for the thread's analysis, the analyst and the
limits. The session hands the graph an `AnalysisContext`, which adds the person's decisions; the graph
factory passes that one to the approval node alone (`graphs.factory.without_decisions`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analyze_experiment.graphs.analysts.base import Analyst
from analyze_experiment.graphs.limits import Limits
from analyze_experiment.tools.protocols import PersonDecisions, ToolSource


@dataclass(frozen=True, kw_only=True)
class NodeContext:
    tool_source: ToolSource
    analyst: Analyst
    reports_dir: Path
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True, kw_only=True)
class AnalysisContext(NodeContext):
    decisions_for: Callable[[str], PersonDecisions]  # run id -> what a person decided, written as the person

    def for_nodes(self) -> NodeContext:
        return NodeContext(
            tool_source=self.tool_source, analyst=self.analyst, reports_dir=self.reports_dir, limits=self.limits
        )
