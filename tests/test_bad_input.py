"""Bad input of every kind, across the commands: exit 2, one line on stderr (a JSON error with -o json),
and nothing in MLflow or the thread list changed."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

SELECT_ERRORS = "SELECT trace_id FROM traces WHERE state = 'ERROR'"

# {run}: an ACTIVE analysis with H1; {done}: a COMPLETED one; {thread}: a thread waiting at the description;
# {exp}: the experiment; {other}: an experiment without traces.
CASES: list[tuple[str, list[str]]] = [
    ("malformed decision", ["resume", "{thread}", "--decision", "{bad"]),
    ("misspelled decision key", ["resume", "{thread}", "--decision", '{"rejct": {"H1": "x"}}']),
    ("decision not an object", ["resume", "{thread}", "--decision", "[]"]),
    ("decision wrong type", ["resume", "{thread}", "--decision", '{"focus": "refunds"}']),
    ("decision about an item not offered", ["resume", "{thread}", "--decision", '{"reject": {"H99": "x"}}']),
    ("decision for another stage", ["resume", "{thread}", "--decision", '{"stage": "issues"}']),
    ("blank description in a decision", ["resume", "{thread}", "--decision", '{"description": "   "}']),
    ("blank focus in a decision", ["resume", "{thread}", "--decision", '{"focus": [" "]}']),
    (
        "blank statement in an edit",
        [
            "resume",
            "{thread}",
            "--decision",
            '{"hypothesis_edits": [{"id": "H1", "statement": " ", "sql": "SELECT 1"}]}',
        ],
    ),
    (
        "added hypothesis without a statement",
        ["resume", "{thread}", "--decision", '{"add_hypotheses": [{"statement": "", "sql": "SELECT 1"}]}'],
    ),
    ("unknown thread", ["resume", "ax-00000000"]),
    ("forget an unknown thread", ["forget", "ax-00000000"]),
    ("unknown approver", ["resume", "{thread}", "--approve", "sometimes"]),
    ("experiment id not a number", ["run", "--experiment-id", "abc", "--approve", "auto"]),
    ("unknown experiment", ["run", "--experiment-id", "999", "--approve", "auto"]),
    ("experiment without traces", ["run", "--experiment-id", "{other}", "--approve", "auto"]),
    ("zero hypotheses", ["run", "--max-hypotheses", "0", "--approve", "auto"]),
    ("negative hypotheses", ["run", "--max-hypotheses", "-3", "--approve", "auto"]),
    ("report path that cannot be written", ["run", "--report", "/proc/nope/report.md", "--approve", "auto"]),
    ("outcome without a name", ["run", "--outcome", "state = 'ERROR'", "--approve", "auto"]),
    ("blank focus", ["run", "--focus", "   ", "--approve", "auto"]),
    ("blank analysis name", ["run", "--name", " ", "--approve", "auto"]),
    ("search: experiment id not a number", ["traces", "search", "-x", "abc"]),
    ("search: unknown experiment", ["traces", "search", "-x", "999"]),
    ("search: negative max results", ["traces", "search", "-n", "-1"]),
    ("search: zero max results", ["traces", "search", "-n", "0"]),
    ("search: unknown field", ["traces", "search", "--extract-fields", "info.nonsense"]),
    ("search: links into a completed analysis", ["traces", "search", "-r", "{done}", "-n", "2"]),
    ("search: run of another experiment", ["traces", "search", "-x", "{other}", "-r", "{run}"]),
    ("get: unknown trace", ["traces", "get", "-t", "tr-00000000000000000000000000000000"]),
    ("get: not a trace id", ["traces", "get", "-t", "nope"]),
    ("sql: writes", ["traces", "execute-sql", "--sql", "DROP TABLE traces"]),
    ("sql: empty", ["traces", "execute-sql", "--sql", " "]),
    ("sql: unknown column", ["traces", "execute-sql", "--sql", "SELECT nope FROM traces"]),
    ("sql: negative timeout", ["traces", "execute-sql", "--sql", "SELECT 1", "--timeout", "-1"]),
    ("sql: zero rows", ["traces", "execute-sql", "--sql", "SELECT 1", "--max-rows", "0"]),
    (
        "sql: run of another experiment",
        ["traces", "execute-sql", "-x", "{other}", "-r", "{run}", "--sql", SELECT_ERRORS],
    ),
    ("sql: links into a completed analysis", ["traces", "execute-sql", "-r", "{done}", "--sql", SELECT_ERRORS]),
    ("link into a completed analysis", ["runs", "link-traces", "-r", "{done}", "-t", "{trace}"]),
    ("link an unknown trace", ["runs", "link-traces", "-r", "{run}", "-t", "tr-00000000000000000000000000000000"]),
    ("doctor: negative sample", ["doctor", "--sample", "-1"]),
    ("doctor: sample not a number", ["doctor", "--sample", "abc"]),
    ("doctor: unknown experiment", ["doctor", "-x", "999"]),
    ("store without its driver", ["--tracking-uri", "postgresql://u:p@127.0.0.1:9/db", "doctor"]),
    ("store of an unknown scheme", ["--tracking-uri", "nonsense://x", "doctor"]),
    ("env file that is not there", ["--env-file", "/nope/.env", "doctor"]),
    ("empty analysis name", ["insights", "create-analysis", "--name", ""]),
    ("blank analysis name (insights)", ["insights", "create-analysis", "--name", "   "]),
    (
        "empty statement",
        ["insights", "create-hypothesis", "-r", "{run}", "--statement", "", "--rationale", "r", "--testing-plan", "p"],
    ),
    (
        "blank statement",
        [
            "insights",
            "create-hypothesis",
            "-r",
            "{run}",
            "--statement",
            "  ",
            "--rationale",
            "r",
            "--testing-plan",
            "p",
        ],
    ),
    ("blank statement edit", ["insights", "update-hypothesis", "-r", "{run}", "-H", "H1", "--statement", " "]),
    ("blank analysis description", ["insights", "update-analysis", "-r", "{run}", "--description", "  "]),
    ("unknown hypothesis", ["insights", "get-hypothesis", "-r", "{run}", "-H", "H99"]),
    ("malformed hypothesis id", ["insights", "get-hypothesis", "-r", "{run}", "-H", "1"]),
    ("unknown run", ["insights", "get-hypothesis", "-r", "0123456789abcdef", "-H", "H1"]),
    ("unknown status", ["insights", "update-hypothesis", "-r", "{run}", "-H", "H1", "--status", "MAYBE"]),
    ("evidence not JSON", ["insights", "update-hypothesis", "-r", "{run}", "-H", "H1", "--evidence", "nope"]),
    (
        "issue from an untested hypothesis",
        [
            "insights",
            "create-issue",
            "-r",
            "{run}",
            "-H",
            "H1",
            "--title",
            "Order lookups time out too often",
            "--description",
            "d",
            "--severity",
            "LOW",
        ],
    ),
    (
        "blank issue description",
        [
            "insights",
            "create-issue",
            "-r",
            "{run}",
            "-H",
            "H1",
            "--title",
            "Order lookups time out too often",
            "--description",
            " ",
            "--severity",
            "LOW",
        ],
    ),
    ("demo: negative traces", ["demo", "--traces", "-5"]),
    ("demo: seed not a number", ["demo", "--seed", "abc"]),
]


@pytest.fixture
def world(cli: CliRunner, store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    run = cli.ok("insights", "create-analysis", "--name", "open", "-o", "json").json()["run_id"]
    cli.ok("insights", "create-baseline-census", "-r", run)
    cli.ok(
        "insights",
        "create-hypothesis",
        "-r",
        run,
        "--statement",
        "errors cluster",
        "--rationale",
        "census",
        "--testing-plan",
        "Q1",
        "--sql-query",
        json.dumps({"id": "Q1", "query": SELECT_ERRORS}),
    )
    done = cli.ok("insights", "create-analysis", "--name", "closed", "-o", "json").json()["run_id"]
    cli.ok("insights", "update-analysis", "-r", done, "--status", "COMPLETED", "--reason", "finished")
    other = store.client().create_experiment("no traces")
    monkeypatch.setattr("sys.stdin", io.StringIO("q\n"))
    thread = cli.ok("run", "--approve", "cli", "-o", "json").json()["thread_id"]
    trace = store.traces.failed_ids()[0]  # type: ignore[attr-defined]
    return {"run": run, "done": done, "thread": thread, "exp": store.experiment_id, "other": other, "trace": trace}


def state_of(store: Store) -> str:
    """Everything a command could change: the MLflow database, the analyses' documents, the threads."""
    digest = hashlib.sha256()
    with sqlite3.connect(store.db_path) as con:
        for line in con.iterdump():
            digest.update(line.encode())
    artifacts = Path(store.client().get_experiment(store.experiment_id).artifact_location.removeprefix("file://"))
    for path in sorted(artifacts.rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    threads = Path.cwd() / "home" / "threads.sqlite"
    if threads.exists():
        with sqlite3.connect(threads) as con:
            for line in con.iterdump():
                digest.update(line.encode())
    return digest.hexdigest()


def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    cli: CliRunner, store: Store, world: dict[str, str]
) -> None:
    assert len(CASES) >= 40
    before = state_of(store)
    wrong: list[str] = []
    for name, template in CASES:
        argv = [world.get(part.strip("{}"), part) if part.startswith("{") else part for part in template]
        for extra in ([], ["-o", "json"]) if _takes_output(argv) else ([],):
            result = cli(*argv, *extra)
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            problem = ""
            if result.exit_code != 2:
                problem = f"exit {result.exit_code}"
            elif len(lines) != 1 or "unexpected" in result.stderr:
                problem = f"stderr {result.stderr!r}"
            elif extra and "error" not in json.loads(result.stdout or "{}"):
                problem = f"stdout {result.stdout!r}"
            elif state_of(store) != before:
                problem = "state changed"
            if problem:
                before = state_of(store)  # blame the next case only for what it does
                wrong.append(f"{name} {' '.join(extra)}: {problem} :: {result.stderr.strip()[:300]}")
    assert not wrong, "\n".join(wrong)


def test_forget_drops_the_thread_and_keeps_its_analysis(cli: CliRunner, store: Store, world: dict[str, str]) -> None:
    from analyze_experiment.agent.core.insights.service import Insights

    listed = cli.ok("list", "-o", "json").json()
    (paused,) = [t for t in listed if t["thread_id"] == world["thread"]]
    said = cli.ok("forget", world["thread"]).stdout
    assert f"its analysis run {paused['run_id']} stays in MLflow" in said
    assert world["thread"] not in {t["thread_id"] for t in cli.ok("list", "-o", "json").json()}
    assert Insights(store.client()).get_analysis(paused["run_id"]).name
    assert "no analysis thread" in cli.refused("resume", world["thread"])


def _takes_output(argv: list[str]) -> bool:
    return argv[0] not in {"--tracking-uri", "--env-file"} and "--approve" not in argv[:1]


def test_the_readme_decisions_follow_the_published_schema(cli: CliRunner) -> None:
    import re

    from analyze_experiment.agent.app.session import parse_decision

    schema = cli.ok("insights", "schema", "decision").json()
    assert {"reject", "hypothesis_edits", "issue_edits", "add_hypotheses", "focus"} <= set(schema["properties"])
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Answering an approval with `--decision`")[1].split("```json")[1].split("```")[0]
    examples = re.split(r"\n(?=\{)", section.strip())
    assert len(examples) == 3
    for example in examples:
        parse_decision(example)  # a README example the tool refuses fails here


def test_the_live_view_shows_one_line_per_step(cli: CliRunner) -> None:
    normal = cli.ok("run", "--approve", "auto").stderr.splitlines()
    verbose = cli.ok("run", "--approve", "auto", "--verbose").stderr.splitlines()
    quiet = cli.ok("run", "--approve", "auto", "--quiet")
    assert not [line for line in normal if line.lstrip().startswith("SELECT")]  # queries only with --verbose
    assert [line for line in verbose if line.lstrip().startswith("SELECT")]
    assert any(line.startswith("test H1: ") for line in normal) and len(normal) < len(verbose) / 2
    assert not re.search(r"\d\.\d{5,}", "\n".join(normal))  # rounded for reading
    assert quiet.stderr.strip() == "" and quiet.stdout.startswith("report: ")
