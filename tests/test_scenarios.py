"""The recorded scenarios: loadable, faithful to the simulator, and their ground truth is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyze_experiment.agent.core.traces.census import compute_census
from analyze_experiment.agent.core.traces.duckdb_engine import DuckDBEngine
from analyze_experiment.agent.core.traces.sync import TraceTableSync
from analyze_experiment.agent.simulation.recordings import SCENARIO_ROOT, read_expected, read_traces, recording_dir
from analyze_experiment.agent.simulation.scenarios import PROBLEMS, SCENARIOS, generate
from tests.conftest import Store
from tests.helpers import CliRunner

RECORDED = sorted(p.name for p in SCENARIO_ROOT.iterdir() if (p / "expected.yaml").is_file())


def test_every_scenario_is_recorded() -> None:
    assert sorted(SCENARIOS) == RECORDED
    planted = {p["kind"] for name in RECORDED for p in read_expected(recording_dir(name))["problems"]}
    assert planted == set(PROBLEMS)  # every problem kind is planted somewhere


@pytest.mark.parametrize("name", RECORDED)
def test_recording_matches_the_simulator(name: str) -> None:
    """Change the simulator and this fails until `evals/record_scenarios.py` is rerun."""
    expected = read_expected(recording_dir(name))
    regenerated = generate(name, "recorded", expected["traces"], expected["seed"]).expected()
    assert regenerated == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", RECORDED)
def test_signals_find_exactly_the_affected_traces(name: str, cli: CliRunner, store: Store, tmp_path: Path) -> None:
    loaded = cli.ok("evals", "load", name, "-o", "json").json()
    experiment_id = loaded[0]["experiment_id"]
    expected = read_expected(recording_dir(name))
    table = TraceTableSync(store.client(), experiment_id, tmp_path / "t.duckdb")
    assert table.sync().total == expected["traces"]
    engine = DuckDBEngine(table.path, row_cap=100_000)
    for problem in expected["problems"]:
        found = {row[0] for row in engine.execute(problem["signal"]).rows}
        assert found == set(problem["affected_trace_ids"]), problem["kind"]
        assert found, f"{problem['kind']} has no affected traces"
        assert len(found) <= expected["traces"] / 2, f"{problem['kind']} leaves too little healthy traffic"


def test_recordings_are_mlflows_own_trace_json() -> None:
    from mlflow.entities import Trace

    for name in RECORDED:
        traces = read_traces(recording_dir(name))
        parsed = [Trace.from_dict(t) for t in traces[:20]]
        assert all(t.info.trace_id.startswith("tr-") and t.data.spans for t in parsed)


@pytest.mark.slow
def test_traffic_looks_like_production(cli: CliRunner, store: Store, tmp_path: Path) -> None:
    """Tokens, models, costs, users and sessions, tool and retriever spans, human and judge feedback,
    failed judge runs, several app versions and days of traffic."""
    ids = {
        item["recording"]: item["experiment_id"]
        for item in cli.ok("evals", "load", "support", "data", "-o", "json").json()
    }
    support = TraceTableSync(store.client(), ids["support"], tmp_path / "s.duckdb")
    support.sync()
    census = compute_census(DuckDBEngine(support.path), discovery=False)
    assert {row["name"] for row in census.sections["spans"]} >= {
        "retrieve_docs",
        "rerank",
        "lookup_order",
        "chat_model",
    }
    assert (
        census.sections["token_usage"][0]["model"] == "gpt-4o-mini"
        and census.sections["token_usage"][0]["cost_usd"] > 0
    )
    assert len(census.sections["traffic_by_day"]) >= 7
    engine = DuckDBEngine(support.path)
    spread = engine.execute(
        "SELECT count(DISTINCT tags['app_version']), count(DISTINCT trace_metadata['mlflow.trace.user']), "
        "count(DISTINCT trace_metadata['mlflow.trace.session']) FROM traces"
    )
    versions, users, sessions = spread.rows[0]
    assert versions == 2 and users > 20 and sessions > 50
    data = TraceTableSync(store.client(), ids["data"], tmp_path / "d.duckdb")
    data.sync()
    judged = (
        DuckDBEngine(data.path)
        .execute(
            "SELECT a.source.source_type, count_if(a.feedback.error IS NOT NULL) FROM traces "
            "LATERAL VIEW explode(assessments) t AS a GROUP BY 1"
        )
        .rows
    )
    assert dict(judged)["LLM_JUDGE"] > 0  # some judge runs errored


@pytest.mark.slow
def test_loading_refuses_unknown_and_duplicate(cli: CliRunner) -> None:
    assert "no recorded scenario 'nope'" in cli.refused("evals", "load", "nope")
    cli.ok("evals", "load", "travel")
    assert "already exists" in cli.refused("evals", "load", "travel")


@pytest.mark.slow
def test_demo_scenarios(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runner = CliRunner(capsys)
    made = runner.ok("demo", "--scenario", "travel", "--traces", "40", "-o", "json").json()
    assert (made["name"], made["traces"]) == ("demo-travel-40-s7", 40)
    assert "'nope' is not one of" in runner.refused("demo", "--scenario", "nope")


VOLATILE_TAGS = {"mlflow.artifactLocation"}


def comparable(trace: dict) -> dict:  # type: ignore[type-arg]
    """A trace without what a store assigns on its own (experiment, artifact path, assessment ids/times)."""
    info = dict(trace["info"])
    info.pop("trace_location", None)
    info["tags"] = {k: v for k, v in info.get("tags", {}).items() if k not in VOLATILE_TAGS}
    info["assessments"] = sorted(
        (a["assessment_name"], str(a.get("feedback")), a.get("rationale"), str(a.get("source")))
        for a in info.get("assessments", [])
    )
    return {"info": info, "data": trace["data"]}


@pytest.mark.slow
def test_load_then_record_gives_the_same_traces(cli: CliRunner, tmp_path: Path) -> None:
    loaded = cli.ok("evals", "load", "travel", "-o", "json").json()[0]
    out = tmp_path / "again"
    recorded = cli.ok("evals", "record", "-x", loaded["experiment_id"], "--out", str(out), "-o", "json").json()
    assert recorded["traces"] == 300
    original = [comparable(t) for t in read_traces(recording_dir("travel"))]
    again = [comparable(t) for t in read_traces(out)]
    assert again == original
    assert read_expected(out)["traces"] == 300


@pytest.mark.slow
def test_census_sees_swallowed_errors_as_empty_answers(cli: CliRunner, store: Store, tmp_path: Path) -> None:
    experiment_id = cli.ok("evals", "load", "travel", "-o", "json").json()[0]["experiment_id"]
    table = TraceTableSync(store.client(), experiment_id, tmp_path / "t.duckdb")
    table.sync()
    census = compute_census(DuckDBEngine(table.path), discovery=False)
    planted = next(
        p for p in read_expected(recording_dir("travel"))["problems"] if p["kind"] == "empty_after_swallowed_error"
    )
    assert census.sections["quality_markers"]["empty_responses"] == len(planted["affected_trace_ids"])
