"""`analyze-experiment`: the command line.

Exit codes: 0 success, 2 refused input or a broken analysis rule (one line says what to do),
75 an analysis paused because the model endpoint or the tracking store stayed down (resume it later),
130 stopped with Ctrl-C (resumable), 1 anything unexpected (including a tracking store that stayed
unreachable outside an analysis).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analyze_experiment.agent.app.cli.common import CliState
from analyze_experiment.agent.app.cli.demo import demo
from analyze_experiment.agent.app.cli.doctor import doctor
from analyze_experiment.agent.app.cli.evals import evals
from analyze_experiment.agent.app.cli.insights import insights
from analyze_experiment.agent.app.cli.run import forget, list_threads, resume, run
from analyze_experiment.agent.app.cli.runs import runs
from analyze_experiment.agent.app.cli.slack import slack
from analyze_experiment.agent.app.cli.traces import traces
from analyze_experiment.agent.core.errors import AnalysisPaused, StoreUnavailableError, UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="analyze-experiment", prog_name="analyze-experiment")
@click.option(
    "--env-file",
    type=click.Path(path_type=Path),
    help="Read settings from this dotenv file (its values win over the environment).",
)
@click.option("--tracking-uri", help="MLflow tracking URI. [default: $MLFLOW_TRACKING_URI or the embedded store]")
@click.option("--debug", is_flag=True, help="Show full tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, env_file: Path | None, tracking_uri: str | None, debug: bool) -> None:
    """Find what is wrong with an LLM agent from the traces in one MLflow experiment.

    \b
    `analyze-experiment run --demo --approve auto` analyses a demo experiment end to end.
    `analyze-experiment run --experiment-id ID` analyses yours, asking you at each approval;
    `analyze-experiment doctor` checks the connection first.
    """
    ctx.obj.env_file = env_file
    ctx.obj.tracking_uri = tracking_uri
    ctx.obj.debug = debug


cli.add_command(demo)
cli.add_command(doctor)
cli.add_command(evals)
cli.add_command(insights)
cli.add_command(traces)
cli.add_command(runs)
cli.add_command(run)
cli.add_command(resume)
cli.add_command(list_threads)
cli.add_command(forget)
cli.add_command(slack)


def main(argv: list[str] | None = None) -> None:
    state = CliState()
    try:
        cli.main(args=argv, prog_name="analyze-experiment", standalone_mode=False, obj=state)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as usage:
        command = usage.ctx.command_path if usage.ctx else "analyze-experiment"
        _fail(state, "usage", f"{usage.format_message()} (see `{command} --help`)", 2)
    except click.ClickException as other:
        _fail(state, "usage", other.format_message(), other.exit_code)
    except UserError as refused:
        _fail(state, refused.kind, refused.message, refused.exit_code)
    except StoreUnavailableError as down:
        _fail(state, down.kind, str(down), 1)
    except AnalysisPaused as paused:
        _fail(state, paused.kind, str(paused), paused.exit_code)
    except Exception as unexpected:
        if state.debug:
            raise
        refusal = _store_refusal(unexpected) or _missing_driver(unexpected)
        if refusal:
            _fail(state, "store_refused", refusal, 2)
        message = f"unexpected {type(unexpected).__name__}: {unexpected} (rerun with --debug for details)"
        _fail(state, "unexpected", message, 1)


_ACCESS_CODES = {"PERMISSION_DENIED", "UNAUTHENTICATED", "UNAUTHORIZED"}


def _store_refusal(error: Exception) -> str | None:
    """MLflow errors that are the user's to fix (credentials, permissions) are refusals, not crashes."""
    code = getattr(error, "error_code", None)
    if type(error).__module__.startswith("mlflow") and code in _ACCESS_CODES:
        return f"the tracking store refused access ({getattr(error, 'message', error)}); check the credentials"
    return None


_DRIVERS = {
    "psycopg": "'analyze-experiment[postgres]'",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
}


def _missing_driver(error: Exception) -> str | None:
    """A database store whose driver is not installed: name what to install."""
    module = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if module not in _DRIVERS:
        return None
    return f"this tracking URI needs the {module} driver, which is not installed: `pip install {_DRIVERS[module]}`"


def _fail(state: CliState, kind: str, message: str, code: int) -> None:
    from analyze_experiment.agent.core.redaction import redact

    flat = " ".join(message.split())
    line = state.services.redact(flat) if state.services else redact(flat)
    if state.json_output:
        import json

        click.echo(json.dumps({"error": {"kind": kind, "message": line}}))
    click.echo(f"error: {line}", err=True)
    sys.exit(code)
