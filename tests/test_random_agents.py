"""Random agents with planted problems: deterministic per seed, nothing shared with the committed
scenarios, every planted effect really in the traces, power that grows with the effect, controls with
nothing planted, seeds derived from the commit, and the pooled scores and gate built on them."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.evals import cases
from analyze_experiment.evals.gate import failures
from analyze_experiment.evals.generators.power import ALPHA, exact_test_power
from analyze_experiment.evals.generators.random_agents import OUTCOME_FAMILIES, Draw, draw, log_draw
from analyze_experiment.evals.scorers import IssueScore, ProblemScore, Scores, matched_problem
from analyze_experiment.evals.summary import summarize
from tests.conftest import Store
from tests.helpers import CliRunner

SEEDS = range(50)  # enough draws to plant every outcome family (asserted below)


# the module's draws take seconds to make: one worker makes them once for every test that reads them
pytestmark = pytest.mark.xdist_group("random-draws")


@pytest.fixture(scope="module")
def draws() -> list[Draw]:
    return [draw(seed, 200) for seed in SEEDS]


def _spans(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return trace["data"]["spans"]


def _root(trace: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in _spans(trace) if s["parent_span_id"] is None)


def _attr(span: dict[str, Any], key: str) -> Any:
    raw = span["attributes"].get(key)
    return None if raw is None else json.loads(raw)


def _names(made: Draw) -> set[str]:
    """Every name a draw made up: trace, spans, models, tag and metadata keys and values, assessments."""
    found: set[str] = set()
    for trace in made.traces:
        found |= {s["name"] for s in _spans(trace)}
        found |= {_attr(s, "mlflow.llm.model") for s in _spans(trace) if "mlflow.llm.model" in s["attributes"]}
        found |= set(trace["info"]["tags"]) | set(trace["info"]["tags"].values())
        found |= set(trace["info"]["trace_metadata"])
        found |= {a["name"] for a in trace["assessments"]}
    return {n for n in found if not n.replace(".", "").isdigit()}  # version-like tag values may recur


def test_a_draw_is_the_same_for_a_seed_and_differs_across_seeds() -> None:
    first, again, other = draw(7, 120), draw(7, 120), draw(8, 120)
    assert json.dumps(first.traces, sort_keys=True) == json.dumps(again.traces, sort_keys=True)
    assert first.expected() == again.expected()
    assert first.summary != other.summary
    assert len(first.traces) == 120 and len(set(first.trace_ids())) == 120
    # the ids follow the experiment, the content does not
    elsewhere = draw(7, 120, experiment_id="42")
    assert not set(elsewhere.trace_ids()) & set(first.trace_ids())
    assert [_root(t)["name"] for t in elsewhere.traces] == [_root(t)["name"] for t in first.traces]


def test_names_are_new_in_every_draw_and_none_is_a_committed_scenarios() -> None:
    from analyze_experiment.agent.simulation.recordings import SCENARIO_ROOT, read_traces

    committed: set[str] = set()
    for path in SCENARIO_ROOT.iterdir():
        if (path / "expected.yaml").is_file():
            for trace in read_traces(path):
                committed |= {s["name"] for s in _spans(trace)}
                committed |= set(trace["info"]["tags"]) | set(trace["info"]["tags"].values())
                committed |= {a["assessment_name"] for a in trace["info"].get("assessments", [])}
                committed |= {
                    _attr(s, "mlflow.llm.model") for s in _spans(trace) if "mlflow.llm.model" in s["attributes"]
                }
    committed = {n for n in committed if not str(n).startswith("mlflow.") and not str(n).replace(".", "").isdigit()}
    one, two = _names(draw(11, 60)), _names(draw(12, 60))
    assert len(one) > 10 and len(two) > 10
    assert not one & two
    assert not (one | two) & committed, (one | two) & committed


@pytest.mark.slow
def test_agents_differ_in_shape_and_nested_spans_sit_inside_their_parent(draws: list[Draw]) -> None:
    kinds = [len({s["name"] for t in made.traces for s in _spans(t)}) - 1 for made in draws]
    assert min(kinds) >= 3 and max(kinds) <= 12 and len(set(kinds)) >= 6
    nested = 0
    for made in draws:
        for trace in made.traces:
            by_id = {s["span_id"]: s for s in _spans(trace)}
            root = _root(trace)
            for span in _spans(trace):
                parent = by_id.get(span["parent_span_id"]) if span["parent_span_id"] else None
                if parent is not None and parent is not root:
                    nested += 1
                    assert parent["start_time_unix_nano"] <= span["start_time_unix_nano"]
                    assert span["end_time_unix_nano"] <= parent["end_time_unix_nano"]
                if _attr(span, "mlflow.spanType") in {"CHAT_MODEL", "LLM"}:
                    assert _attr(span, "mlflow.llm.model")
    assert nested > 0


@pytest.mark.slow
def test_every_planted_effect_shows_in_the_traces_the_truth_names(draws: list[Draw]) -> None:
    """Checked on the trace JSON itself, independently of the generator's own bookkeeping."""
    planted = {p.outcome_family for made in draws for p in made.problems}
    assert planted == set(OUTCOME_FAMILIES), set(OUTCOME_FAMILIES) - planted
    assert {p.cause_family for made in draws for p in made.problems} == {
        "feature_value",
        "pair",
        "threshold",
        "time_window",
        "identifier_shape",
    }
    for made in draws:
        by_id = {t["info"]["trace_id"]: t for t in made.traces}
        for problem in made.problems:
            assert problem.affected_trace_ids, problem.kind
            assert 0.0 <= problem.power <= 1.0
            for trace_id in problem.affected_trace_ids:
                assert _shows(problem.kind, problem.description, by_id[trace_id], made), (made.seed, problem.kind)
            assert set(problem.unobserved_trace_ids) == _unrated(problem.kind, problem.description, made)


def _unrated(kind: str, description: str, made: Draw) -> set[str]:
    """The traces where the judge a problem is about gave no verdict (for a bad answer: none but errors)."""
    outcome = kind.split("-")[1]
    if not outcome.startswith("assessment"):
        return set()
    named = description.split("'")[1]
    return {
        t["info"]["trace_id"]
        for t in made.traces
        if not any(a["name"] == named and (outcome == "assessment_error" or not a["error"]) for a in t["assessments"])
    }


def _shows(kind: str, description: str, trace: dict[str, Any], made: Draw) -> bool:
    outcome = kind.split("-")[1]
    root = _root(trace)
    named = description.split("'")[1] if "'" in description else ""
    spans = [s for s in _spans(trace) if s["name"] == named]
    if outcome == "trace_failed":
        return root["status"]["code"] == "STATUS_CODE_ERROR"
    if outcome == "span_failed":
        return any(s["status"]["code"] == "STATUS_CODE_ERROR" for s in spans)
    if outcome == "span_degenerate_output":
        outputs = [_attr(s, "mlflow.spanOutputs") for s in spans if s["status"]["code"] == "STATUS_CODE_OK"]
        return any(o in (None, "", [], {}) or (isinstance(o, dict) and o.get("count") == 0) for o in outputs)
    if outcome == "empty_response":
        answer = _attr(root, "mlflow.spanOutputs")
        return root["status"]["code"] == "STATUS_CODE_OK" and (
            answer in (None, "") or (isinstance(answer, dict) and set(answer.values()) == {""})
        )
    if outcome == "assessment_negative":
        rated = [a for a in trace["assessments"] if a["name"] == named and not a["error"]]
        return all(_negative(a["value"]) for a in rated)  # unrated traces count too
    if outcome == "assessment_error":
        return any(a["name"] == named and a["error"] for a in trace["assessments"])
    if outcome == "repeated_tool_call":
        inputs = [s["attributes"].get("mlflow.spanInputs") for s in spans]
        return len(inputs) != len(set(inputs))
    durations = [_ms(_root(t)) for t in made.traces]
    if outcome == "trace_slow":
        return _ms(root) >= sorted(durations, reverse=True)[len(durations) // 20 - 1]
    if outcome == "span_slow":
        typical = statistics.median(_ms(s) for t in made.traces for s in _spans(t) if s["name"] == named)
        return any(_ms(s) > 3 * typical for s in spans)
    raise AssertionError(outcome)


def _negative(value: Any) -> bool:
    if isinstance(value, bool):
        return value is False
    return value == "no" if isinstance(value, str) else value in (1, 2)


def _ms(span: dict[str, Any]) -> float:
    return float(span["end_time_unix_nano"] - span["start_time_unix_nano"]) / 1e6


@pytest.mark.slow
def test_the_planted_traces_are_what_the_outcome_and_segment_queries_select(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written to a real store and read back as the traces table: custom metadata arrives (in one
    transaction on the SQL store, through each trace's info elsewhere), and each problem's affected
    traces are in its segment and show its outcome there."""
    from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
    from analyze_experiment.agent.core.traces.sync import TraceTableSync
    from analyze_experiment.agent.simulation import writer

    client = store.client()
    for seed, through_trace_info in ((3, False), (2053, True)):
        if through_trace_info:
            monkeypatch.setattr(writer, "_sql_store", lambda _client: None)
        experiment_id = client.create_experiment(f"draw-{seed}")
        made = log_draw(client, experiment_id, seed, 150)
        table = TraceTableSync(client, experiment_id, tmp_path / f"{seed}.duckdb")
        assert table.sync().total == 150
        engine = DuckDBEngine(table.path, row_cap=100_000)
        keys = {k for t in made.traces for k in t["info"]["trace_metadata"]}
        stored = {
            row[0]
            for row in engine.execute(
                "SELECT DISTINCT k FROM traces LATERAL VIEW explode(map_keys(trace_metadata)) t AS k"
            ).rows
        }
        assert keys <= stored
        failed = engine.execute("SELECT count(*) FROM traces WHERE state = 'ERROR'").rows[0][0]
        assert failed == len(made.failed_ids())
        assert made.problems
        for problem in made.problems:
            outcome = set(engine.execute(problem.outcome_sql).trace_ids(first_column_fallback=True))
            segment = set(engine.execute(problem.segment_sql).trace_ids(first_column_fallback=True))
            affected = set(problem.affected_trace_ids)
            assert len(segment) == problem.segment_size, problem.kind
            assert affected <= segment, problem.kind
            shown = affected & outcome
            if problem.outcome_family.startswith("assessment_negative"):
                assert shown, problem.kind  # the unrated ones cannot show
            else:
                assert shown == affected, problem.kind


@pytest.mark.slow
def test_power_grows_with_the_effect_and_needs_five_traces() -> None:
    powers = [exact_test_power(60, 0.02 + effect, 240, 0.02) for effect in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert powers == sorted(powers) and powers[0] < 0.1 and powers[-1] > 0.99
    assert exact_test_power(20, 0.2, 280, 0.0) == 0.0  # 4 expected traces: below what a search looks at
    # nothing elsewhere: any 5 inside reject, so the power is the chance of 5 or more of 40 at 20%
    assert exact_test_power(40, 0.2, 260, 0.0) == pytest.approx(scipy_stats.binom.sf(4, 40, 0.2))
    assert exact_test_power(500, 0.5, 500, 0.5) < 0.01  # no effect, no power
    made = [p for d in (draw(s, 200) for s in range(8)) for p in d.problems]
    assert any(p.power >= 0.8 for p in made) and any(p.power < 0.8 for p in made)


@pytest.mark.parametrize(("n1", "p1", "n2", "p0"), [(9, 8 / 9, 78, 19 / 78), (30, 0.4, 270, 0.1)])
def test_power_is_how_often_fishers_exact_test_rejects(n1: int, p1: float, n2: int, p0: float) -> None:
    """Against draws tested by scipy's own Fisher test. The first table is a small segment of rated
    traces, where a normal approximation said 0.89."""
    rng = np.random.default_rng(3)
    inside, rest = rng.binomial(n1, p1, 3000), rng.binomial(n2, p0, 3000)
    rejected = [
        k >= 5 and scipy_stats.fisher_exact([[k, n1 - k], [r, n2 - r]], alternative="greater").pvalue <= ALPHA
        for k, r in zip(inside, rest, strict=True)
    ]
    assert exact_test_power(n1, p1, n2, p0) == pytest.approx(np.mean(rejected), abs=0.03)


@pytest.mark.slow
def test_controls_plant_nothing_and_carry_decoys() -> None:
    for seed in cases.CONTROL_DEV_SEEDS[:2]:
        control = draw(seed, 150, control=True)
        assert control.problems == [] and control.expected()["problems"] == []
        assert any("heavy-tailed" in d for d in control.decoys)
        assert any("correlated with nothing" in d for d in control.decoys)
        assert control.summary != draw(seed, 150).summary


def test_seeds_come_from_the_dev_set_or_the_commit_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    one = cases.seeds_from_commit("3523ba3f00", 30)
    assert one == cases.seeds_from_commit("3523ba3f00", 30) and len(set(one)) == 30
    assert not set(one) & set(cases.seeds_from_commit("83cddea000", 30))
    assert not set(one) & set(cases.seeds_from_commit("3523ba3f00", 5, control=True))
    assert cases.random_seeds("commit:3523ba3f00", 30) == one
    assert cases.random_seeds("dev", 30) == cases.DEV_SEEDS
    assert cases.random_seeds("dev", 5, control=True) == cases.CONTROL_DEV_SEEDS
    assert cases.random_seeds("1, 2,3", 30) == (1, 2, 3) and cases.random_seeds("1,2,3", 2, control=True) == (1, 2)
    assert len(cases.random_seeds("commit", 3)) == 3  # this checkout's HEAD
    with pytest.raises(UserError, match="development set has 30"):
        cases.random_seeds("dev", 31)
    with pytest.raises(UserError, match="--random-seeds takes"):
        cases.random_seeds("someday", 3)
    monkeypatch.setenv("CI", "true")
    assert cases.default_seed_source() == "commit"
    monkeypatch.setenv("CI", "")
    assert cases.default_seed_source() == "dev"
    names = [c.name for c in cases.random_draws((5, 6)) + cases.random_draws((7,), control=True)]
    assert names == ["random-5", "random-6", "control-7"]


def _scores(case: str, source: str, problems: list[ProblemScore], issues: list[IssueScore]) -> Scores:
    return Scores(
        case=case,
        model="offline",
        source=source,
        issue_recall=None,
        issue_precision=None,
        evidence_precision=None,
        problems=problems,
        issues=issues,
        census_exact=True,
    )


def _problem(kind: str, outcome: str, cause: str, power: float, found: bool) -> ProblemScore:
    return ProblemScore(kind=kind, outcome_family=outcome, cause_family=cause, power=power, found=found)


def _issue(matched: str | None, nearest: str | None) -> IssueScore:
    return IssueScore(
        issue_id="I",
        title="t",
        matched=matched,
        evidence_in_problem=3 if matched else 0,
        evidence=3,
        affected=10,
        nearest=nearest,
    )


def test_an_issue_matches_the_problem_it_overlaps_most() -> None:
    """Two problems on neighbouring slices: the issue's evidence lies in both, its traces are one of
    them exactly and half of the other."""
    first, second = {f"t{i}" for i in range(20)}, {f"t{i}" for i in range(10)}
    problems = {"p1": first, "p2": second}
    overlaps = {"p1": 0.5, "p2": 1.0}
    assert matched_problem({"t1", "t2", "t3"}, overlaps, problems) == "p2"
    assert matched_problem({"t11", "t12", "t13"}, overlaps, problems) == "p1"  # its evidence is not p2's
    assert matched_problem({"t1", "t2", "t3"}, {"p1": 0.4, "p2": 0.45}, problems) is None  # too little overlap


def test_each_metric_is_its_own_evaluator_over_the_matched_issues() -> None:

    from analyze_experiment.agent.core.insights.models import Census
    from analyze_experiment.evals.cases import Expected
    from analyze_experiment.evals.scorers import EVALUATORS, ScoringContext

    issues = [
        IssueScore(issue_id="I1", title="a", matched="p1", evidence_in_problem=3, evidence=4, affected=9),
        IssueScore(issue_id="I2", title="b", matched=None, evidence_in_problem=0, evidence=2, affected=5),
    ]
    problems = [ProblemScore(kind="p1", found=True), ProblemScore(kind="p2"), ProblemScore(kind="p3")]
    nothing: Any = None
    context = ScoringContext(
        services=nothing,
        run_id="r",
        expected=Expected(traces=10, errors=2, problems=[]),
        engine=nothing,
        report=None,
        hypotheses={},
        issue_scores=issues,
        problem_scores=problems,
        census=Census(trace_count=10, ok_count=9, error_count=1, error_rate=0.1),
        metrics={"llm.test.calls": 3, "llm.test.input_tokens": 100, "llm.test.cost_usd": 0.5},
    )
    scored = {e.name: e.evaluate(context) for e in EVALUATORS if e.name != "violations"}
    assert scored["issue_recall"] == 1 / 3 and scored["issue_precision"] == 1 / 2
    assert scored["evidence_precision"] == 3 / 6
    assert scored["census_exact"] is False  # one failure counted where the case holds two
    assert (scored["llm_calls"], scored["tokens"], scored["cost_usd"]) == (3, 100, 0.5)
    assert set(Scores.model_fields) >= {e.name for e in EVALUATORS}  # every metric lands in the scores


def test_pooled_scores_per_family_and_the_gate_that_names_what_failed() -> None:
    results = [
        _scores(
            "random-1",
            "random",
            [_problem("a", "span_failed", "pair", 0.99, True), _problem("b", "trace_slow", "threshold", 0.3, True)],
            [_issue("a", "a"), _issue(None, "a"), _issue("b", "b")],
        ),
        _scores("random-2", "random", [_problem("c", "span_failed", "time_window", 0.95, False)], [_issue(None, None)]),
        _scores("control-1", "control", [], [_issue(None, None), _issue(None, None)]),
        _scores("control-2", "control", [], []),
        _scores("support", "recording", [], []).model_copy(update={"issue_recall": 0.5}),
    ]
    summary = summarize(results)
    assert (summary.strong, summary.strong_found, summary.recall) == (2, 1, 0.5)
    assert (summary.weak, summary.weak_found) == (1, 1)  # a weak problem found counts apart
    assert (summary.issues, summary.matched_issues, summary.precision) == (4, 2, 0.5)
    assert summary.false_issues_per_control == 1.0
    outcome = {row.family: row for row in summary.by_outcome}
    assert (outcome["span_failed"].recall, outcome["span_failed"].precision) == (0.5, 0.5)
    assert outcome["trace_slow"].recall is None and outcome["trace_slow"].precision == 1.0
    assert outcome["(none)"].issues == 1 and outcome["(none)"].precision == 0.0
    assert {row.family for row in summary.by_cause} == {"pair", "threshold", "time_window", "(none)"}
    below = failures(results)
    assert "scenarios: support: issue_recall 0.50 < 0.8" in below
    assert "random draws: pooled recall 0.50 < 0.9" in below
    assert "random draws: pooled precision 0.50 < 0.9" in below
    assert "controls: 1.00 false issues per negative control > 0.1" in below
    assert not any(b.startswith("scenarios: random") for b in below)  # draws are judged pooled only


@pytest.mark.slow
def test_a_draw_loads_by_name_and_bad_seed_options_are_refused(cli: CliRunner) -> None:
    loaded = cli.ok("evals", "load", "random-2053", "-o", "json").json()
    assert [item["recording"] for item in loaded] == ["random-2053"]
    assert loaded[0]["problems"] == [p.kind for p in draw(2053).problems]
    assert loaded[0]["traces"] == cases.RANDOM_TRACES and loaded[0]["descriptions"]
    assert "already exists" in cli.refused("evals", "load", "random-2053")
    assert "--random-seeds takes" in cli.refused("evals", "run", "--random-seeds", "someday", "--no-held-out")
    assert "development set has 30" in cli.refused(
        "evals", "run", "--random-draws", "31", "--random-seeds", "dev", "--no-held-out"
    )
