"""Helpers for driving the real CLI entry point in-process and reading what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class CliRunner:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *args: str) -> Result:
        from analyze_experiment.agent.app.cli import main

        self._capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, f"{args} failed: {result.stderr}"
        return result

    def refused(self, *args: str) -> str:
        """Run a command that must be refused; return its one-line error message."""
        result = self(*args)
        assert result.exit_code == 2, f"{args} exited {result.exit_code}: {result.stdout} {result.stderr}"
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one line, got: {result.stderr!r}"
        return lines[0]


def cli_process(
    uri: str, home: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own (what a person or a crash test runs), against `uri`."""
    return subprocess.run(
        [sys.executable, "-m", "analyze_experiment", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_cli_env(uri, home, env),
        check=False,
        timeout=timeout,
    )


def _cli_env(uri: str, home: Path, extra: dict[str, str] | None) -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "ANALYZE_EXPERIMENT_HOME": str(home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **(extra or {}),
    }


def json_of(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float = 300) -> None:
    """Block until `process` creates `path` (a failpoint it reached); fail if it exits first."""
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"the process exited ({process.returncode}) before {path.name}: {err[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} not reached in {timeout:g} s")
        time.sleep(0.02)


def cli_popen(uri: str, home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "analyze_experiment", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_cli_env(uri, home, env),
    )
