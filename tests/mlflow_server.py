"""A real `mlflow server` on 127.0.0.1 for integration tests, started (and restarted) on a given port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(root: Path, port: int) -> subprocess.Popen[str]:
    """Serve `root/mlflow.db` with proxied artifacts under `root/artifacts`; returns once it listens."""
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    process = subprocess.Popen(
        [
            str(mlflow_cli),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    assert process.stderr is not None
    for line in process.stderr:  # the server says when it is listening; no polling, no sleeping
        if "Application startup complete" in line or "Uvicorn running" in line:
            return process
    raise AssertionError(f"mlflow server exited with {process.wait()}")


def stop_server(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=30)
    if process.stderr is not None:
        process.stderr.close()
