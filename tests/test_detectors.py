"""The offline analyst's detectors find every planted problem from the data alone, in the committed
recordings and in fresh draws the detectors were never developed against."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.simulation.recordings import read_expected, recording_dir
from agent.simulation.scenarios import SCENARIOS, log_scenario
from agent.traces.engine import DuckDBEngine
from agent.traces.sync import TraceTableSync
from graphs.analysts.detectors import Finding, detect
from tests.conftest import Store
from tests.helpers import CliRunner

MATCH = 0.8  # a finding matches a planted problem when their trace sets overlap this much (Jaccard)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def findings_for(store: Store, experiment_id: str, tmp_path: Path) -> list[Finding]:
    table = TraceTableSync(store.client(), experiment_id, tmp_path / f"{experiment_id}.duckdb")
    table.sync()
    return detect(DuckDBEngine(table.path, row_cap=100_000))


def check(findings: list[Finding], planted: dict[str, set[str]]) -> None:
    for kind, truth in planted.items():
        best = max((jaccard(truth, set(f.affected)) for f in findings), default=0.0)
        assert best >= MATCH, f"planted {kind} ({len(truth)} traces) not found; best overlap {best:.2f}"
    for finding in findings:
        best = max(jaccard(set(finding.affected), truth) for truth in planted.values())
        assert best >= MATCH, f"finding '{finding.statement}' matches nothing planted ({best:.2f})"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_committed_recordings(name: str, cli: CliRunner, store: Store, tmp_path: Path) -> None:
    experiment_id = cli.ok("evals", "load", name, "-o", "json").json()[0]["experiment_id"]
    expected = read_expected(recording_dir(name))
    planted = {p["kind"]: set(p["affected_trace_ids"]) for p in expected["problems"]}
    check(findings_for(store, experiment_id, tmp_path), planted)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [101, 202])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_held_out_draws(name: str, seed: int, store: Store, tmp_path: Path) -> None:
    client = store.client()
    experiment_id = client.create_experiment(f"held-out-{name}-{seed}", artifact_location=str(tmp_path / "a"))
    run = log_scenario(client, experiment_id, name, 200, seed)
    check(findings_for(store, experiment_id, tmp_path), {k: set(v) for k, v in run.affected.items()})
