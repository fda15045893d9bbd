"""What every node is given through the graph's runtime context: the tools, the analyst, the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analyze_experiment.graphs.analysts.base import Analyst
from analyze_experiment.tools.workbench import Workbench


@dataclass(frozen=True)
class Limits:
    max_hypotheses: int = 10
    tool_calls: int = 16  # per hypothesis test
    tokens: int = 60_000  # per hypothesis test, LLM analyst only
    parallel: int = 3  # hypotheses tested at once


@dataclass
class AnalysisContext:
    workbench: Workbench
    analyst: Analyst
    reports_dir: Path
    limits: Limits = field(default_factory=Limits)
