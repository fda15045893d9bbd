"""The graph without MLflow: nodes, routes, the approval node and the offline analyst over the fake of
the tools' protocols (tests/fakes.py), with SQL on a real DuckDB table.

The whole-graph tests run the compiled graph itself, pausing at each approval as a front end would.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from analyze_experiment.agent.core.approvals import ApprovalDecision, HypothesisEdit, NewHypothesis
from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.agent.core.insights.models import (
    Analysis,
    Census,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    IssueStatus,
    Severity,
)
from analyze_experiment.agent.core.report import ReportFacts
from analyze_experiment.agent.core.traces.table import SCHEMA
from analyze_experiment.agent.core.traces.views import TraceView
from analyze_experiment.graphs.analysts.base import HypothesisDraft, IssueDraft, Verdict
from analyze_experiment.graphs.analysts.offline import OfflineAnalyst
from analyze_experiment.graphs.approval import apply, build_request
from analyze_experiment.graphs.context import AnalysisContext, NodeContext
from analyze_experiment.graphs.factory import BRANCHES, FIRST_NODE, RESUME_AFTER, build_graph
from analyze_experiment.graphs.limits import Limits
from analyze_experiment.graphs.nodes.issue import issue
from analyze_experiment.graphs.nodes.test import test_hypothesis as run_test_node
from analyze_experiment.graphs.routes import route_issue_approval, route_tests
from analyze_experiment.graphs.state import AnalysisState
from analyze_experiment.tools.protocols import AnalysisTools
from tests.fakes import FakeDecisions, FakeTools, FakeToolSource, Record
from tests.sql.fixture_table import span, trace

SUPPORT = Evidence(trace_id="tr-1", rationale="the step failed here", supports=True)
REFUTE = Evidence(trace_id="tr-2", rationale="the step worked here", supports=False)


def _planted_table(path: Path, seed: int, planted_rate: float = 0.6) -> Path:
    """Traffic from three zones; one tool step fails in `planted_rate` of one zone's traces, 3% elsewhere."""
    rng = random.Random(seed)
    zones = [f"zone-{rng.randrange(100, 999)}" for _ in range(3)]
    step = f"step_{rng.randrange(1000, 9999)}"
    rows = []
    for n in range(1, 241):
        zone = zones[n % 3]
        fails = rng.random() < (planted_rate if zone == zones[0] else 0.03)
        spans = [
            span(
                "",
                step,
                "TOOL",
                10,
                rng.randrange(50, 400),
                "ERROR" if fails else "OK",
                "upstream refused the call" if fails else None,
            ),
            span("", "compose", "CHAT_MODEL", 500, rng.randrange(200, 900)),
        ]
        rows.append(
            trace(
                n,
                "ERROR" if fails else "OK",
                rng.randrange(700, 2500),
                {"q": f"ask {n}"},
                None if fails else {"a": "done"},
                spans,
                tags={"zone": zone},
            )
        )
    with duckdb.connect(str(path)) as con:
        con.register("rows", pa.Table.from_pylist(rows, schema=SCHEMA))
        con.execute("CREATE TABLE traces AS SELECT * FROM rows")
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _planted_table(tmp_path_factory.mktemp("planted") / "traces.duckdb", seed=7)


@pytest.fixture
def record(planted: Path) -> Record:
    analysis = Analysis(experiment_id="1", run_id="run-1", name="unit", thread_id="t-1")
    return Record(analysis=analysis, table=planted)


def _hypothesis(number: int, status: HypothesisStatus = HypothesisStatus.TESTING) -> Hypothesis:
    return Hypothesis(
        id=f"H{number}",
        statement=f"statement {number}",
        rationale="r",
        testing_plan="p",
        status=status,
        evidence=[SUPPORT] if status is HypothesisStatus.VALIDATED else [],
    )


class ScriptedAnalyst:
    """An analyst whose answers a test sets; it records what it was asked."""

    name = "scripted"

    def __init__(self, verdict: Verdict | Exception | None = None, issue: IssueDraft | None = None) -> None:
        self.verdict = verdict
        self.issue = issue
        self.asked: list[str] = []

    def describe(self, tools: AnalysisTools, samples: list[TraceView]) -> str:
        return f"an agent seen in {len(samples)} traces"

    def hypothesize(
        self, tools: AnalysisTools, census: Census, analysis: Analysis, limit: int
    ) -> list[HypothesisDraft]:
        return []

    def test(self, tools: AnalysisTools, hypothesis: Hypothesis) -> Verdict:
        self.asked.append(hypothesis.id)
        if isinstance(self.verdict, Exception):
            raise self.verdict
        assert self.verdict is not None
        return self.verdict

    def draft_issue(self, tools: AnalysisTools, hypothesis: Hypothesis) -> IssueDraft | None:
        self.asked.append(hypothesis.id)
        return self.issue

    def recommend(self, facts: ReportFacts) -> list[str]:
        return []


def _runtime(record: Record, analyst: Any, tmp_path: Path) -> Runtime[NodeContext]:
    source = FakeToolSource(record.table)
    source.records[record.analysis.run_id] = record
    context = NodeContext(tool_source=source, analyst=analyst, reports_dir=tmp_path, limits=Limits())
    return Runtime(context=context, stream_writer=lambda _chunk: None)


STATE = AnalysisState(thread_id="t-1", experiment_id="1", run_id="run-1")


def test_tests_are_routed_to_hypotheses_still_testing_and_not_yet_tried(record: Record, tmp_path: Path) -> None:
    for number, status in [
        (1, HypothesisStatus.TESTING),
        (2, HypothesisStatus.REJECTED),
        (3, HypothesisStatus.TESTING),
    ]:
        record.hypotheses[f"H{number}"] = _hypothesis(number, status)
    runtime = _runtime(record, ScriptedAnalyst(), tmp_path)
    sent = route_tests(STATE | {"tested": ["H3"]}, runtime)
    assert isinstance(sent, list) and [s.arg["hypothesis_id"] for s in sent if isinstance(s, Send)] == ["H1"]
    assert route_tests(STATE | {"tested": ["H1", "H3"]}, runtime) == "issue"


def test_the_issue_approval_is_skipped_when_no_issue_is_open(record: Record, tmp_path: Path) -> None:
    runtime = _runtime(record, ScriptedAnalyst(), tmp_path)
    assert route_issue_approval(STATE, runtime) == "report"
    record.hypotheses["H1"] = _hypothesis(1, HypothesisStatus.VALIDATED)
    FakeTools(record).create_issue("H1", "Lookup step fails for one zone", "d", Severity.HIGH, [SUPPORT])
    assert route_issue_approval(STATE, runtime) == "approve_issues"
    record.issues["I1"] = record.issues["I1"].model_copy(update={"status": IssueStatus.REJECTED})
    assert route_issue_approval(STATE, runtime) == "report"


@pytest.mark.parametrize(
    ("verdict", "status", "noted"),
    [
        (Verdict(status=HypothesisStatus.VALIDATED, evidence=[SUPPORT], reason="seen"), HypothesisStatus.VALIDATED, 0),
        (Verdict(status=None, evidence=[SUPPORT], reason="budget spent"), HypothesisStatus.TESTING, 1),
        # the rules refuse a validation without supporting evidence: kept TESTING, with a note why
        (Verdict(status=HypothesisStatus.VALIDATED, evidence=[REFUTE], reason="sure"), HypothesisStatus.TESTING, 1),
        (UserError("the query failed: no such column"), HypothesisStatus.TESTING, 1),
    ],
)
def test_a_test_concludes_only_what_the_rules_accept(
    record: Record, tmp_path: Path, verdict: Verdict | Exception, status: HypothesisStatus, noted: int
) -> None:
    record.hypotheses["H1"] = _hypothesis(1)
    update = run_test_node(
        {"experiment_id": "1", "run_id": "run-1", "hypothesis_id": "H1"},
        _runtime(record, ScriptedAnalyst(verdict), tmp_path),
    )
    assert update == {"tested": ["H1"]}
    assert record.hypotheses["H1"].status is status and len(record.hypotheses["H1"].notes) == noted


def test_a_hypothesis_rejected_at_approval_is_never_tested(record: Record, tmp_path: Path) -> None:
    record.hypotheses["H1"] = _hypothesis(1, HypothesisStatus.REJECTED)
    analyst = ScriptedAnalyst(Verdict(status=HypothesisStatus.VALIDATED, evidence=[SUPPORT], reason="seen"))
    run_test_node({"experiment_id": "1", "run_id": "run-1", "hypothesis_id": "H1"}, _runtime(record, analyst, tmp_path))
    assert analyst.asked == [] and record.hypotheses["H1"].status is HypothesisStatus.REJECTED


def test_issues_come_from_validated_hypotheses_once(record: Record, tmp_path: Path) -> None:
    record.hypotheses["H1"] = _hypothesis(1, HypothesisStatus.VALIDATED)
    record.hypotheses["H2"] = _hypothesis(2)
    draft = IssueDraft(
        title="Lookup step fails for one zone", description="d", severity=Severity.HIGH, evidence=[SUPPORT]
    )
    analyst = ScriptedAnalyst(issue=draft)
    runtime = _runtime(record, analyst, tmp_path)
    assert issue(STATE, runtime) == {"phase": "approve_issues"}
    issue(STATE, runtime)  # a resumed thread: the issue is finished, not drafted again
    assert [(i.hypothesis_id, i.title) for i in record.issues.values()] == [("H1", draft.title)]
    assert analyst.asked == ["H1"]


def test_an_issue_the_rules_refuse_is_left_out(record: Record, tmp_path: Path) -> None:
    record.hypotheses["H1"] = _hypothesis(1, HypothesisStatus.VALIDATED)
    too_short = IssueDraft(title="Broken", description="d", severity=Severity.LOW, evidence=[SUPPORT])
    issue(STATE, _runtime(record, ScriptedAnalyst(issue=too_short), tmp_path))
    assert record.issues == {}


def test_the_approval_applies_a_persons_decision_as_the_person(record: Record) -> None:
    for number in (1, 2):
        record.hypotheses[f"H{number}"] = _hypothesis(number)
    tools = FakeTools(record)
    request = build_request("hypotheses", STATE, tools)
    assert [item.id for item in request.items] == ["H1", "H2"]
    people = FakeDecisions(record, lambda: "approve_hypotheses")
    decision = ApprovalDecision(
        stage="hypotheses",
        reject={"H2": "not ours", "H9": "unknown"},
        hypothesis_edits=[HypothesisEdit(id="H1", statement="sharper statement")],
        add_hypotheses=[NewHypothesis(statement="refunds take too long")],
    )
    apply("hypotheses", decision, tools, _decisions_runtime(record, people))
    assert [h.status for h in record.hypotheses.values()] == [
        HypothesisStatus.TESTING,
        HypothesisStatus.REJECTED,
        HypothesisStatus.TESTING,
    ]
    assert record.hypotheses["H1"].statement == "sharper statement"
    assert record.hypotheses["H3"].statement == "refunds take too long"
    assert [a.stage for a in people.approvals] == ["hypotheses"]
    apply("hypotheses", decision, tools, _decisions_runtime(record, people))  # applied again after a crash
    assert len(record.hypotheses) == 3 and record.hypotheses["H2"].status is HypothesisStatus.REJECTED


def _decisions_runtime(record: Record, people: FakeDecisions) -> Runtime[AnalysisContext]:
    context = AnalysisContext(
        tool_source=FakeToolSource(record.table),
        analyst=ScriptedAnalyst(),
        reports_dir=Path(),
        decisions_for=lambda _run_id: people,
    )
    return Runtime(context=context)


def _offline_context(source: FakeToolSource, reports: Path, writers: list[str]) -> AnalysisContext:
    def decisions_for(run_id: str) -> FakeDecisions:
        node = get_config()["metadata"]["langgraph_node"]
        writers.append(node)
        return FakeDecisions(source.records[run_id], lambda: node)

    return AnalysisContext(
        tool_source=source, analyst=OfflineAnalyst(), reports_dir=reports, decisions_for=decisions_for
    )


def _approve_everything(graph: Any, config: Any, context: AnalysisContext, first: Any) -> Iterator[str]:
    """Drive the graph as `--approve auto` does, yielding each approval stage it stops at."""
    graph.invoke(first, config, context=context)
    while (snapshot := graph.get_state(config)).next:
        (pending,) = snapshot.interrupts
        yield pending.value["stage"]
        graph.invoke(Command(resume={"by": "auto", "stage": pending.value["stage"]}), config, context=context)


def test_the_offline_analyst_finds_the_planted_failure_through_the_whole_graph(planted: Path, tmp_path: Path) -> None:
    source = FakeToolSource(planted)
    writers: list[str] = []
    context = _offline_context(source, tmp_path, writers)
    graph = build_graph(InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t-1"}}
    start = AnalysisState(thread_id="t-1", experiment_id="1", model="offline", focus=[], outcomes={})
    stages = list(_approve_everything(graph, config, context, start))

    (record,) = source.records.values()
    assert stages == ["description", "hypotheses", "issues"]
    assert writers == ["approve_description", "approve_hypotheses", "approve_issues"]
    assert graph.get_state(config).values["phase"] == "complete" and Path(record.files[0]).is_file()
    zone, step = _planted_names(planted)
    found = [i for i in record.issues.values() if step in i.title + i.description]
    assert found, [i.title for i in record.issues.values()]
    hypothesis = record.hypotheses[found[0].hypothesis_id]
    assert hypothesis.status is HypothesisStatus.VALIDATED and zone in hypothesis.statement + hypothesis.rationale
    assert set(record.read) >= {e.trace_id for e in found[0].evidence}  # evidence cites traces it read


def test_the_offline_analyst_reports_nothing_when_nothing_differs(tmp_path: Path) -> None:
    """The negative control: the same traffic with the step failing at the same rate in every zone."""
    source = FakeToolSource(_planted_table(tmp_path / "flat.duckdb", seed=7, planted_rate=0.03))
    graph = build_graph(InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t-flat"}}
    start = AnalysisState(thread_id="t-flat", experiment_id="1", model="offline", focus=[], outcomes={})
    stages = list(_approve_everything(graph, config, _offline_context(source, tmp_path, []), start))
    (record,) = source.records.values()
    assert stages == ["description", "hypotheses"] and record.issues == {}
    assert not any(h.status is HypothesisStatus.VALIDATED for h in record.hypotheses.values())


def _planted_names(planted: Path) -> tuple[str, str]:
    with duckdb.connect(str(planted), read_only=True) as con:
        zone, step = con.execute(
            "SELECT tags['zone'], s.name FROM traces, unnest(spans) AS u(s) WHERE s.status_code = 'ERROR' "
            "AND s.parent_id IS NOT NULL GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()  # type: ignore[misc]
    return str(zone), str(step)


def test_a_thread_stopped_between_steps_resumes_where_its_phase_begins() -> None:
    graph = build_graph(InMemorySaver())
    for phase, after in RESUME_AFTER.items():
        config: Any = {"configurable": {"thread_id": f"stopped-in-{phase}"}}
        graph.update_state(config, {"phase": phase}, as_node=after)
        (next_node,) = graph.get_state(config).next
        # at its first node, or at the router that sends the thread there (a router cannot be resumed into)
        assert next_node == FIRST_NODE[phase] or FIRST_NODE[phase] in BRANCHES[next_node][1], (phase, next_node)
