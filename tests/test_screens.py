"""What a person sees in tables at 80 and 110 columns: ids are whole, so they can be copied into
`traces get`, `resume` or `insights ...`; other columns give way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner


@pytest.fixture(params=[80, 110])
def width(request: pytest.FixtureRequest) -> Iterator[int]:
    from agent import console

    before = console.out.width
    console.out.width = request.param
    yield request.param
    console.out.width = before


def lines_fit(text: str, width: int) -> bool:
    return all(len(line) <= width for line in text.splitlines())


def test_ids_are_whole_at_any_width(cli: CliRunner, store: Store, width: int) -> None:
    done = cli.ok("run", "--approve", "auto", "-o", "json").json()
    title = Path(done["report"]).read_text(encoding="utf-8").splitlines()[0]
    experiment = store.client().get_experiment(store.experiment_id).name
    assert re.fullmatch(rf"# Analysis report: {experiment}, \d{{4}}-\d\d-\d\d \({done['thread_id']}\)", title)
    screens = {
        "list": cli.ok("list").stdout,
        "traces search": cli.ok("traces", "search", "-n", "5").stdout,
        "doctor": cli.ok("doctor").stdout,
        "preview-issues": cli.ok("insights", "preview-issues", "-r", done["run_id"]).stdout,
    }
    ids = {
        "list": [done["thread_id"], done["run_id"]],
        "traces search": [t["trace_id"] for t in cli.ok("traces", "search", "-n", "5", "-o", "json").json()["traces"]],
        "doctor": [t["trace_id"] for t in cli.ok("doctor", "-o", "json").json()["sample"]],
        "preview-issues": re.findall(
            r"tr-[0-9a-f]{32}", str(cli.ok("insights", "preview-issues", "-r", done["run_id"], "-o", "json").json())
        ),
    }
    for name, screen in screens.items():
        assert ids[name], name
        for wanted in ids[name]:
            assert wanted in screen, f"{name} at {width} columns cuts {wanted}:\n{screen}"
        assert lines_fit(screen, width), f"{name} is wider than {width} columns:\n{screen}"
