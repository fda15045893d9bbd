"""Recorded scenarios: MLflow's own trace JSON (gzip) plus the ground truth, and loading them."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from analyze_experiment.agent.core.errors import NotFoundError

if TYPE_CHECKING:
    from mlflow import MlflowClient

SCENARIO_ROOT = Path(__file__).resolve().parents[2] / "evals" / "scenarios"
TRACES_FILE = "traces.json.gz"
EXPECTED_FILE = "expected.yaml"


def recording_dir(name: str, root: Path = SCENARIO_ROOT) -> Path:
    """A recording given as a directory, or by the name of a committed scenario."""
    given = Path(name).expanduser()
    if (given / TRACES_FILE).is_file():
        return given
    path = root / name
    if not (path / TRACES_FILE).is_file():
        known = sorted(p.name for p in root.iterdir() if (p / TRACES_FILE).is_file()) if root.is_dir() else []
        raise NotFoundError(f"no recorded scenario '{name}' in {root}; recorded: {', '.join(known) or 'none'}")
    return path


def read_traces(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path / TRACES_FILE, "rt", encoding="utf-8") as handle:
        traces: list[dict[str, Any]] = json.load(handle)
    return traces


def read_expected(path: Path) -> dict[str, Any]:
    expected: dict[str, Any] = yaml.safe_load((path / EXPECTED_FILE).read_text(encoding="utf-8"))
    return expected


def write_recording(path: Path, traces: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical across re-recordings of unchanged traffic
    with gzip.GzipFile(path / TRACES_FILE, "wb", mtime=0) as handle:
        handle.write(json.dumps(traces, ensure_ascii=False, sort_keys=True).encode())
    (path / EXPECTED_FILE).write_text(yaml.safe_dump(expected, sort_keys=False, width=110), encoding="utf-8")


def load_recording(
    client: MlflowClient,
    name: str,
    experiment_name: str | None = None,
    on_traces: Callable[[int], None] | None = None,
    root: Path = SCENARIO_ROOT,
) -> str:
    """Load a recording (a directory or a committed scenario's name) into a new experiment; returns its id."""
    from analyze_experiment.agent.core.errors import UserError
    from analyze_experiment.agent.simulation.writer import write_traces

    path = recording_dir(name, root)
    target = experiment_name or f"scenario-{path.name}"
    if client.get_experiment_by_name(target) is not None:
        raise UserError(f"experiment '{target}' already exists in this store; pass another --experiment-name")
    experiment_id = client.create_experiment(target, tags={"scenario": name})
    write_traces(client, experiment_id, read_traces(path), on_traces)
    return experiment_id


def record_experiment(
    client: MlflowClient, experiment_id: str, out: Path, on_traces: Callable[[int], None] | None = None
) -> int:
    """Record every trace of an experiment in the same format, with an expected.yaml to fill in."""
    traces: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.search_traces(
            locations=[experiment_id], max_results=500, page_token=token, order_by=["timestamp_ms ASC"]
        )
        traces.extend(trace.to_dict() for trace in page)
        if on_traces:
            on_traces(len(page))
        token = page.token
        if not token:
            break
    expected = (
        read_expected(out)
        if (out / EXPECTED_FILE).is_file()
        else {
            "scenario": out.name,
            "summary": f"recorded from experiment {experiment_id}",
            "traces": len(traces),
            "problems": [],  # label them: kind, description, strength, signal, affected_trace_ids
        }
    )
    expected["traces"] = len(traces)
    write_recording(out, traces, expected)
    return len(traces)
