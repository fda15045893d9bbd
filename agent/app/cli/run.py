"""`run`, `resume` and `list`: the agent that carries an analysis from setup to report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from analyze_experiment.agent.app.cli.common import current_services, output_option
from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.graphs.limits import MAX_HYPOTHESES_RANGE, Limits

if TYPE_CHECKING:
    from rich.console import Console

    from analyze_experiment.agent.app.session import AnalysisSession, Outcome
    from analyze_experiment.agent.core.approvals import ApprovalDecision, ApprovalRequest

Approver = Callable[["ApprovalRequest"], "ApprovalDecision"]
_STYLES = {
    "phase": "bold cyan",
    "sql": "dim",
    "search": "dim",
    "read": "dim",
    "write": "green",
    "note": "yellow",
    "error": "bold red",
}


def verbosity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--verbose shows every query and read in full; --quiet only errors and the result."""
    func = click.option("--quiet", "verbosity", flag_value="quiet", help="Show only errors and the result.")(func)
    func = click.option(
        "--verbose", "-v", "verbosity", flag_value="verbose", help="Show every query, search and read in full."
    )(func)
    return click.option("--normal", "verbosity", flag_value="normal", default=True, hidden=True)(func)


@click.command()
@click.option("--experiment-id", "-x", help="The experiment to analyse. [default: $MLFLOW_EXPERIMENT_ID]")
@click.option("--demo", "use_demo", is_flag=True, help="Analyse the demo experiment (created on first use).")
@click.option("--model", help="Chat model for the analyst, or 'offline'. [default: offline without an endpoint]")
@click.option("--focus", multiple=True, help="An area to look at first (repeatable).")
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    metavar="NAME=SQL",
    help="An outcome of your own for the discovery engine: a SQL boolean over `traces` (repeatable), "
    "e.g. --outcome \"escalated=response rlike 'human agent'\".",
)
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="Write the markdown report here.")
@click.option(
    "--approve",
    type=click.Choice(["cli", "auto", "slack"]),
    help="Who approves: you at the terminal, nobody, or your team in Slack.",
)
@click.option("--slack-channel", help="Channel for --approve slack. [default: $SLACK_CHANNEL]")
@click.option(
    "--max-hypotheses",
    type=click.IntRange(*MAX_HYPOTHESES_RANGE),
    default=Limits.max_hypotheses,
    show_default=True,
    help="How many hypotheses to derive from the census and test.",
)
@click.option("--name", help="Name of the analysis run.")
@verbosity_options
@output_option
def run(
    experiment_id: str | None,
    use_demo: bool,
    model: str | None,
    focus: tuple[str, ...],
    outcomes: tuple[str, ...],
    report_path: Path | None,
    approve: str | None,
    slack_channel: str | None,
    max_hypotheses: int,
    name: str | None,
    verbosity: str,
    output: str,
) -> None:
    """Analyse an experiment: describe, census, hypothesize, test, report issues.

    \b
    It pauses for your approval after the description, the hypotheses and the issues.
    `--approve auto` runs unattended and prints the report path. Ctrl-C leaves a
    resumable analysis: `analyze-experiment resume THREAD_ID`.

    \b
    analyze-experiment run --demo --approve auto
    analyze-experiment run -x 1 --focus 'refund answers'
    analyze-experiment run -x 1 --approve auto --report out/report.md -o json
    """
    from analyze_experiment.agent.app.session import RunOptions

    if experiment_id and use_demo:
        raise UserError("pass either --experiment-id or --demo, not both")
    custom = parse_outcomes(outcomes)
    approver = _approver(approve)
    services = current_services()
    hook = _slack_hook(slack_channel) if approve == "slack" else None
    if use_demo:
        experiment_id = _demo_experiment(output)
    options = RunOptions(
        experiment_id=services.experiment_id(experiment_id),
        model=model,
        focus=list(focus),
        outcomes=custom,
        report_path=str(report_path.resolve()) if report_path else None,
        max_hypotheses=max_hypotheses,
        name=name,
    )
    _carry(lambda session: session.start(options), approver, output, hook, verbosity)


def parse_outcomes(given: tuple[str, ...]) -> dict[str, str]:
    """`NAME=SQL` pairs, each SQL a boolean the guard accepts as a WHERE clause over `traces`."""
    from analyze_experiment.agent.core.traces.sql import parse

    outcomes: dict[str, str] = {}
    for item in given:
        name, _, sql = item.partition("=")
        name, sql = name.strip(), sql.strip()
        if not name or not sql:
            raise UserError(
                f"--outcome {item!r}: write it as NAME=SQL, e.g. --outcome \"escalated=response rlike 'human'\""
            )
        if name in outcomes:
            raise UserError(f"--outcome {name} is given twice; give each outcome one name")
        try:
            parse(f"SELECT trace_id FROM traces WHERE {sql}")
        except UserError as refused:
            raise UserError(f"--outcome {name}: {refused}") from refused
        outcomes[name] = sql
    return outcomes


@click.command()
@click.argument("thread_id")
@click.option("--approve", type=click.Choice(["cli", "auto"]), help="Who approves the remaining steps.")
@click.option(
    "--decision",
    "decision_json",
    metavar="JSON",
    help="Answer the pending approval; the format: `analyze-experiment insights schema decision`.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    help="Write the markdown report here (instead of the path the run started with).",
)
@verbosity_options
@output_option
def resume(
    thread_id: str,
    approve: str | None,
    decision_json: str | None,
    report_path: Path | None,
    verbosity: str,
    output: str,
) -> None:
    """Resume a paused or interrupted analysis thread.

    \b
    analyze-experiment resume ax-1a2b3c4d                  # carry on; ask at the terminal
    analyze-experiment resume ax-1a2b3c4d --approve auto   # approve the rest unattended
    analyze-experiment resume ax-1a2b3c4d --decision '{"reject": {"H2": "not our concern"}}'
    """
    from analyze_experiment.agent.app.session import parse_decision

    decision = parse_decision(decision_json) if decision_json else None
    # Without a terminal or --approve, resume carries on to the next approval and says how to answer it.
    approver = _approver(approve, required=False) if decision is None or approve else None
    report = str(report_path.resolve()) if report_path else None
    _carry(lambda session: session.resume(thread_id, decision, report), approver, output, verbosity=verbosity)


@click.command(name="list")
@output_option
def list_threads(output: str) -> None:
    """Analysis threads, paused and finished, newest first.

    \b
    analyze-experiment list
    analyze-experiment list -o json
    """
    from analyze_experiment.agent.app.console import emit_json, show
    from analyze_experiment.agent.app.session import AnalysisSession

    threads = AnalysisSession(current_services()).threads()
    if output == "json":
        emit_json([t.model_dump() for t in threads])
        return
    from rich import box
    from rich.table import Table

    table = Table(
        title="analysis threads",
        box=box.SIMPLE_HEAD,
        caption="report paths: `list -o json`",
        show_edge=False,
        pad_edge=False,
    )
    # ids are copied into `resume` and `insights ...`: never cut; the other columns wrap instead
    table.add_column("thread", no_wrap=True, min_width=max((len(t.thread_id) for t in threads), default=6))
    table.add_column("updated", no_wrap=True)
    table.add_column("exp", max_width=8)
    table.add_column("run", no_wrap=True, min_width=max((len(t.run_id or "") for t in threads), default=3))
    table.add_column("state")
    for t in threads:
        state = f"waiting: {t.waiting_for}" if t.waiting_for else t.phase
        updated = (t.updated_at or "")[5:16].replace("T", " ")  # MM-DD HH:MM, UTC like every time here
        table.add_row(t.thread_id, updated, t.experiment_id or "", t.run_id or "", state)
    show(table)


@click.command()
@click.argument("thread_id")
@output_option
def forget(thread_id: str, output: str) -> None:
    """Remove a thread from `list`; its analysis run and everything it recorded stay in MLflow.

    \b
    analyze-experiment forget ax-1a2b3c4d
    """
    from analyze_experiment.agent.app.console import emit_json
    from analyze_experiment.agent.app.session import AnalysisSession

    gone = AnalysisSession(current_services()).forget(thread_id)
    if output == "json":
        emit_json({"forgotten": gone.model_dump()})
        return
    kept = f"; its analysis run {gone.run_id} stays in MLflow" if gone.run_id else ""
    click.echo(f"forgot thread {thread_id}{kept}")


def _approver(approve: str | None, required: bool = True) -> Approver | None:
    from analyze_experiment.agent.app.cli.approve import ask, auto_approve

    if approve == "slack":
        return None  # the Slack hook posts the request; `slack serve` resumes on the click
    if approve == "auto":
        return auto_approve
    if approve is None and not sys.stdin.isatty():
        if not required:
            return None
        raise UserError("no terminal to ask for approvals; pass --approve auto, or --approve cli in a terminal")
    from analyze_experiment.agent.app.console import err

    return lambda request: ask(request, err)  # prompts on stderr: stdout stays the command's result


def _slack_hook(channel: str | None) -> Callable[[ApprovalRequest], None]:
    from analyze_experiment.agent.app.slack.hook import SlackHook
    from analyze_experiment.agent.core.errors import ConfigurationError

    hook = SlackHook(current_services())
    target = channel or current_services().settings.slack_channel
    if not target:
        raise ConfigurationError("--approve slack needs --slack-channel or SLACK_CHANNEL")

    def post(request: ApprovalRequest) -> None:
        hook.post_approval(request, target)

    return post


def _carry(
    step: Callable[[AnalysisSession], Outcome],
    approver: Approver | None,
    output: str,
    slack: Callable[[ApprovalRequest], None] | None = None,
    verbosity: str = "normal",
) -> None:
    from analyze_experiment.agent.app.cli.approve import PauseRequested
    from analyze_experiment.agent.app.session import AnalysisSession

    live = _live(output, verbosity)
    session = AnalysisSession(current_services(), on_event=live)
    outcome: Outcome | None = None
    try:
        outcome = step(session)
        while outcome.pending is not None and approver is not None:
            live({"kind": "phase", "text": f"approval: {outcome.pending.stage}"})
            outcome = _answer(session, outcome, approver, live)
    except PauseRequested:
        outcome = session.resume(outcome.thread_id) if outcome else None
    except (KeyboardInterrupt, EOFError):  # Ctrl-C anywhere, Ctrl-D at a prompt
        # the store is asked only when the thread is not known yet: an interrupt can leave it mid-write
        thread = outcome.thread_id if outcome else next((t.thread_id for t in session.threads()), None)
        hint = f"`analyze-experiment resume {thread}`" if thread else "`analyze-experiment list`"
        click.echo(f"\nstopped; the analysis is saved; carry on with {hint}", err=True)
        sys.exit(130)
    if outcome is not None and outcome.pending is not None and slack is not None:
        slack(outcome.pending)
        click.echo(
            f"posted the {outcome.pending.stage} approval to Slack; `analyze-experiment slack serve` "
            "resumes the analysis when it is answered",
            err=True,
        )
    if outcome is not None:
        _finish(outcome, output)


def _answer(
    session: AnalysisSession, outcome: Outcome, approver: Approver, live: Callable[[dict[str, Any]], None]
) -> Outcome:
    """One approval; a decision the session refuses is asked again rather than ending the run."""
    from analyze_experiment.agent.core.errors import DecisionRefused

    assert outcome.pending is not None
    decision = approver(outcome.pending)
    try:
        return session.resume(outcome.thread_id, decision)
    except DecisionRefused as refused:
        if decision.by == "auto":
            raise
        live({"kind": "error", "text": f"not applied: {refused.message}; decide again"})
        return outcome


def _finish(outcome: Outcome, output: str) -> None:
    from analyze_experiment.agent.app.console import emit_json

    if output == "json":
        emit_json(outcome.model_dump(mode="json"))
        return
    if outcome.report:
        click.echo(f"report: {outcome.report}")
        click.echo(f"analysis run: {outcome.run_id} (COMPLETED)")
    elif outcome.pending is not None:
        # the command on a line of its own, so a narrow terminal never wraps the thread id
        click.echo(
            f"paused for approval of the {outcome.pending.stage}; answer with:\n"
            f"  analyze-experiment resume {outcome.thread_id}"
        )


# What each level of the live view shows: the steps (one line each), or every tool call in full.
_SHOWN = {"quiet": {"error"}, "normal": {"phase", "write", "note", "error"}}


def _live(output: str, verbosity: str = "normal") -> Callable[[dict[str, Any]], None]:
    if output == "json":
        return lambda _event: None
    from analyze_experiment.agent.app.console import err, plain

    out: Console = err
    shown = _SHOWN.get(verbosity)

    def show(event: dict[str, Any]) -> None:
        kind = str(event.get("kind", "note"))
        if shown is not None and kind not in shown:
            return
        prefix = f"[{event['hypothesis_id']}] " if event.get("hypothesis_id") else ""
        body = str(event.get("text", ""))
        if verbosity != "verbose":  # one line per step, cut to the terminal's width
            body = body.splitlines()[0] if body else ""
        text = plain(prefix + body)
        text.stylize(_STYLES.get(kind, ""))
        if verbosity != "verbose":
            text.truncate(max(out.width - 1, 20), overflow="ellipsis")
        out.print(text, soft_wrap=verbosity != "verbose")

    return show


def _demo_experiment(output: str) -> str:
    from analyze_experiment.agent.app.demo import ensure_demo

    made = ensure_demo(current_services(), "support", 500, 7)
    if output != "json":
        click.echo(f"demo experiment {made.experiment_id} ({made.name}, {made.traces} traces)", err=True)
    return made.experiment_id
