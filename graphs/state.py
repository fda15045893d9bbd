"""Graph state: ids and phase bookkeeping only. Hypotheses, evidence, issues and the census are read
from the insights library every time (the workflow's "read state from the store, never from memory")."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

# Where a thread stands: the phase it is in or about to begin, named by its first node ("test" begins at
# `dispatch_tests`), or "complete". Nodes write it; the session reads it to resume and to show a thread.
Phase = Literal[
    "setup",
    "describe",
    "approve_description",
    "census",
    "hypothesize",
    "record_hypotheses",
    "approve_hypotheses",
    "test",
    "approve_issues",
    "report",
    "complete",
]


class AnalysisState(TypedDict, total=False):
    """The thread's graph state; a node returns the keys it changes (hence `total=False`)."""

    thread_id: str
    experiment_id: str
    run_id: str
    name: str
    model: str
    max_hypotheses: int
    report_path: str
    tracking_uri: str
    focus: list[str]
    outcomes: dict[str, str]  # a person's own outcomes for the discovery engine: name -> SQL boolean
    phase: Phase
    drafts: list[dict[str, Any]]  # the analyst's hypotheses until each is written
    tested: Annotated[list[str], operator.add]
    report: str


class TestTask(TypedDict):
    """What one parallel test branch receives."""

    experiment_id: str
    run_id: str
    hypothesis_id: str
