"""What a person sees in tables at 80 and 110 columns: ids are whole, so they can be copied into
`traces get`, `resume` or `insights ...`; other columns give way."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI


@pytest.fixture
def set_width() -> Iterator[Callable[[int], None]]:
    from analyze_experiment.agent.app import console

    before = console.out.width

    def set_to(columns: int) -> None:
        console.out.width = columns

    yield set_to
    console.out.width = before


def lines_fit(text: str, width: int) -> bool:
    return all(len(line) <= width for line in text.splitlines())


def test_ids_are_whole_at_any_width(cli: CliRunner, store: Store, set_width: Callable[[int], None]) -> None:
    done = cli.ok("run", "--approve", "auto", "-o", "json").json()
    title = Path(done["report"]).read_text(encoding="utf-8").splitlines()[0]
    experiment = store.client().get_experiment(store.experiment_id).name
    assert re.fullmatch(rf"# Analysis report: {experiment}, \d{{4}}-\d\d-\d\d \({done['thread_id']}\)", title)
    commands = {
        "list": ["list"],
        "traces search": ["traces", "search", "-n", "5"],
        "doctor": ["doctor"],
        "preview-issues": ["insights", "preview-issues", "-r", done["run_id"]],
    }
    ids = {
        "list": [done["thread_id"], done["run_id"]],
        "traces search": [t["trace_id"] for t in cli.ok("traces", "search", "-n", "5", "-o", "json").json()["traces"]],
        "doctor": [t["trace_id"] for t in cli.ok("doctor", "-o", "json").json()["sample"]],
        "preview-issues": re.findall(r"tr-[0-9a-f]{32}", cli.ok(*commands["preview-issues"], "-o", "json").stdout),
    }
    for width in (80, 110):
        set_width(width)
        for name, argv in commands.items():
            screen = cli.ok(*argv).stdout
            assert ids[name], name
            for wanted in ids[name]:
                assert wanted in screen, f"{name} at {width} columns cuts {wanted}:\n{screen}"
            assert lines_fit(screen, width), f"{name} is wider than {width} columns:\n{screen}"
