"""Every command's help shows an example, and every option says what it is for."""

from __future__ import annotations

from collections.abc import Iterator

import click

from analyze_experiment.agent.app.cli import cli


def commands(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_command_has_an_example_and_every_option_a_help_text() -> None:
    missing = []
    for name, command in commands(cli):
        if f"analyze-experiment {name}" not in (command.help or ""):
            missing.append(f"{name}: no example")
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{name} {'/'.join(param.opts)}: no help text")
    assert not missing, "\n".join(missing)
