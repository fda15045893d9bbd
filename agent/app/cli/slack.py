"""`analyze-experiment slack serve`: receive approval clicks and resume analyses."""

from __future__ import annotations

import click

from analyze_experiment.agent.app.cli.common import current_services


@click.group()
def slack() -> None:
    """Approve analyses from Slack (see the README for creating the Slack app)."""


@slack.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface for HTTP mode (put a proxy in front).")
@click.option("--port", default=3000, show_default=True, help="Port for HTTP mode; Slack posts to /slack/events.")
@click.option(
    "--socket-mode", is_flag=True, help="Connect out to Slack instead (needs SLACK_APP_TOKEN; no public URL)."
)
def serve(host: str, port: int, socket_mode: bool) -> None:
    """Receive approval clicks and resume the paused analyses they answer.

    \b
    analyze-experiment slack serve --port 3000
    """
    from analyze_experiment.agent.app.slack.hook import SlackHook
    from analyze_experiment.agent.app.slack.server import http_server
    from analyze_experiment.agent.app.slack.server import socket_mode as run_socket_mode
    from analyze_experiment.agent.core.errors import ConfigurationError

    services = current_services()
    if not services.settings.slack_approvers:
        raise ConfigurationError("set SLACK_APPROVERS to the Slack user ids allowed to approve (comma-separated)")
    app = SlackHook(services).app()
    if socket_mode:
        if not services.settings.slack_app_token:
            raise ConfigurationError("--socket-mode needs SLACK_APP_TOKEN (an xapp- token with connections:write)")
        click.echo("listening to Slack over Socket Mode (Ctrl-C to stop)", err=True)
        run_socket_mode(app, services.settings.slack_app_token.get_secret_value())
        return
    server = http_server(app, host, port)
    click.echo(f"listening on http://{host}:{server.server_port}/slack/events (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()
