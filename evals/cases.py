"""Eval cases: a traced experiment plus its ground truth (pydantic_evals' "cases" and "dataset").

A case is a committed recording, a fresh draw of a scenario from a seed the analyst was never
developed against (held out), a random agent with random planted problems (`random-<seed>`) or with
none (a negative control, `control-<seed>`), or a user's own experiment with their own labels.

Random draws come from a fixed development set of seeds (DEV_SEEDS, CONTROL_DEV_SEEDS) or from seeds
derived from the commit hash (`seeds_from_commit`), so that CI judges each commit on draws nobody chose.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

HELD_OUT_SEEDS = (4242, 9001)  # never used while developing the detectors
HELD_OUT_TRACES = 200
# The random draws an analyst may be developed against; CI draws others from the commit hash.
DEV_SEEDS = (
    2053,
    2573,
    7439,
    8262,
    12053,
    12269,
    18575,
    24020,
    30181,
    30618,
    34234,
    34585,
    35953,
    37584,
    39406,
    39823,
    40197,
    42612,
    49662,
    59661,
    59933,
    62437,
    64189,
    64986,
    67577,
    75504,
    75896,
    76943,
    76979,
    78428,
)
CONTROL_DEV_SEEDS = (79476, 84392, 89874, 95914, 98828)
RANDOM_DRAWS = 30
CONTROLS = 5
RANDOM_TRACES = 300
STRONG = 0.8  # problems with at least this power count towards recall; weaker ones are reported apart


class Problem(BaseModel):
    kind: str
    strength: bool = False
    affected_trace_ids: list[str] = Field(default_factory=list)
    # Random draws say what they planted: the outcome (what goes wrong), the cause (which traces), the
    # statistical power to find it at its size, and a sentence.
    outcome_family: str | None = None
    cause_family: str | None = None
    power: float | None = None
    description: str | None = None
    # Traces where the outcome cannot be seen (an assessment nobody made): a judge's verdict on 60% of
    # the traces shows a bad-answer problem in those only, so matching compares selections there alone.
    unobserved_trace_ids: list[str] = Field(default_factory=list)


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
    source: Literal["recording", "held_out", "experiment", "random", "control"]
    scenario: str | None = None
    seed: int | None = None
    traces: int | None = None
    experiment_id: str | None = None
    expected: Expected | None = None  # held-out draws know theirs only once generated


def committed(names: list[str]) -> list[Case]:
    from analyze_experiment.agent.simulation.recordings import recording_dir

    cases = []
    for name in names:
        path = recording_dir(name)
        expected = Expected.from_yaml(path / "expected.yaml")
        expected.errors = expected.errors if expected.errors is not None else _recorded_errors(path)
        cases.append(Case(name=name, source="recording", scenario=name, expected=expected))
    return cases


def held_out(names: list[str], seeds: tuple[int, ...] = HELD_OUT_SEEDS, traces: int = HELD_OUT_TRACES) -> list[Case]:
    return [
        Case(name=f"{name}@{seed}", source="held_out", scenario=name, seed=seed, traces=traces)
        for name in names
        for seed in seeds
    ]


def random_draws(seeds: tuple[int, ...], traces: int = RANDOM_TRACES, *, control: bool = False) -> list[Case]:
    source: Literal["random", "control"] = "control" if control else "random"
    return [Case(name=f"{source}-{seed}", source=source, seed=seed, traces=traces) for seed in seeds]


def seeds_from_commit(commit: str, count: int, *, control: bool = False) -> tuple[int, ...]:
    """`count` seeds derived from a commit hash: the same for one commit, different for the next."""
    seeds: list[int] = []
    index = 0
    while len(seeds) < count:
        digest = hashlib.sha256(f"{'control' if control else 'random'}:{commit}:{index}".encode()).hexdigest()
        seed = int(digest[:8], 16) % 1_000_000_000
        if seed not in seeds:
            seeds.append(seed)
        index += 1
    return tuple(seeds)


def default_seed_source() -> str:
    """`commit` on CI (where $CI is set), `dev` elsewhere."""
    return "commit" if os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"} else "dev"


def random_seeds(spec: str, count: int, *, control: bool = False) -> tuple[int, ...]:
    """The seeds `--random-seeds` names: `dev` (the development set), `commit` (derived from HEAD's
    hash), `commit:<hash>`, or whole numbers separated by commas (the controls take the first ones)."""
    from analyze_experiment.agent.core.errors import UserError

    spec = spec.strip()
    if spec == "dev":
        listed = CONTROL_DEV_SEEDS if control else DEV_SEEDS
        if count > len(listed):
            raise UserError(
                f"the development set has {len(listed)} {'controls' if control else 'random draws'}; "
                f"ask for at most that many, or use --random-seeds commit"
            )
        return listed[:count]
    if spec == "commit" or spec.startswith("commit:"):
        commit = spec.partition(":")[2] or head_commit()
        return seeds_from_commit(commit, count, control=control)
    try:
        seeds = tuple(int(seed) for seed in spec.split(",") if seed.strip())
    except ValueError as bad:
        raise UserError(
            f"--random-seeds takes dev, commit, commit:<hash> or whole numbers separated by commas, not '{spec}'"
        ) from bad
    return seeds[:count] if control else seeds


def head_commit() -> str:
    from analyze_experiment.agent.core.errors import UserError

    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as failed:
        raise UserError(
            "--random-seeds commit needs a git checkout; use dev, commit:<hash> or a list of seeds"
        ) from failed


def own_experiment(experiment_id: str, expected_file: Path) -> Case:
    from analyze_experiment.agent.core.errors import UserError

    if not expected_file.is_file():
        raise UserError(f"{expected_file} does not exist; write your labels in the expected.yaml format (see README)")
    return Case(
        name=f"experiment-{experiment_id}",
        source="experiment",
        experiment_id=experiment_id,
        expected=Expected.from_yaml(expected_file),
    )


def _recorded_errors(path: Path) -> int:
    from analyze_experiment.agent.simulation.recordings import read_traces

    return sum(1 for trace in read_traces(path) if trace["info"]["state"] == "ERROR")
