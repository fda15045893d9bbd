"""Eval cases: a traced experiment plus its ground truth (pydantic_evals' "cases" and "dataset").

A case is a committed recording, a fresh draw of a scenario from a seed the analyst was never
developed against (held out), or a user's own experiment with their own labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

HELD_OUT_SEEDS = (4242, 9001)  # never used while developing the detectors
HELD_OUT_TRACES = 200


class Problem(BaseModel):
    kind: str
    strength: bool = False
    affected_trace_ids: list[str] = Field(default_factory=list)


class Expected(BaseModel):
    """The `expected.yaml` format: counts for the census check, labelled problems for the scores."""

    traces: int | None = None
    errors: int | None = None
    problems: list[Problem] = Field(default_factory=list)

    @classmethod
    def from_yaml(cls, path: Path) -> Expected:
        import yaml

        body: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls.model_validate({k: body.get(k) for k in ("traces", "errors", "problems") if k in body})


class Case(BaseModel):
    name: str
    source: Literal["recording", "held_out", "experiment"]
    scenario: str | None = None
    seed: int | None = None
    traces: int | None = None
    experiment_id: str | None = None
    expected: Expected | None = None  # held-out draws know theirs only once generated


def committed(names: list[str]) -> list[Case]:
    from agent.simulation.recordings import recording_dir

    cases = []
    for name in names:
        path = recording_dir(name)
        expected = Expected.from_yaml(path / "expected.yaml")
        expected.errors = expected.errors if expected.errors is not None else _recorded_errors(path)
        cases.append(Case(name=name, source="recording", scenario=name, expected=expected))
    return cases


def held_out(names: list[str], seeds: tuple[int, ...] = HELD_OUT_SEEDS, traces: int = HELD_OUT_TRACES) -> list[Case]:
    return [Case(name=f"{name}@{seed}", source="held_out", scenario=name, seed=seed, traces=traces)
            for name in names for seed in seeds]  # fmt: skip


def own_experiment(experiment_id: str, expected_file: Path) -> Case:
    from agent.errors import UserError

    if not expected_file.is_file():
        raise UserError(f"{expected_file} does not exist; write your labels in the expected.yaml format (see README)")
    return Case(name=f"experiment-{experiment_id}", source="experiment", experiment_id=experiment_id,
                expected=Expected.from_yaml(expected_file))  # fmt: skip


def _recorded_errors(path: Path) -> int:
    from agent.simulation.recordings import read_traces

    return sum(1 for trace in read_traces(path) if trace["info"]["state"] == "ERROR")
