"""Settings from the environment and --env-file, `doctor`, and a CLI that starts fast."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from analyze_experiment.agent.core.errors import ConfigurationError
from analyze_experiment.agent.core.settings import load_settings, normalize_tracking_uri
from tests.conftest import Store
from tests.helpers import CliRunner

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "dapi0123456789abcdef0123456789abcdef"


def test_env_file_wins_over_environment(tmp_path: Path) -> None:
    env_file = tmp_path / "mlflow.env"
    env_file.write_text("MLFLOW_TRACKING_URI=sqlite:////data/mlflow.db\nMLFLOW_EXPERIMENT_ID=7\n")
    settings = load_settings({"MLFLOW_TRACKING_URI": "sqlite:////other.db"}, env_file=env_file)
    assert (settings.tracking_uri, settings.experiment_id) == ("sqlite:////data/mlflow.db", "7")
    assert load_settings({}, env_file=env_file, experiment_id="9").experiment_id == "9"


def test_default_store_lives_in_the_home_directory(tmp_path: Path) -> None:
    settings = load_settings({"ANALYZE_EXPERIMENT_HOME": str(tmp_path)})
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.tracking_uri_is_default


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://u:p@db:5432/mlflow", "postgresql://u:p@db:5432/mlflow"),
        ("mysql+pymysql://u:p@db/mlflow", "mysql+pymysql://u:p@db/mlflow"),
        ("file:///srv/mlruns", "file:///srv/mlruns"),
        ("/srv/mlruns", "file:///srv/mlruns"),
        ("databricks", "databricks"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_tracking_uris(raw: str, expected: str) -> None:
    assert normalize_tracking_uri(raw) == expected


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unsupported scheme 'ftp'"):
        normalize_tracking_uri("ftp://host/x")


def test_databricks_needs_credentials() -> None:
    with pytest.raises(ConfigurationError, match="DATABRICKS_HOST and DATABRICKS_TOKEN"):
        load_settings({"MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_HOST": "https://x"})
    assert load_settings({"MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_CONFIG_PROFILE": "dev"}).is_databricks


def test_secrets_never_print(tmp_path: Path) -> None:
    settings = load_settings(
        {"MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_HOST": "https://x", "DATABRICKS_TOKEN": TOKEN}
    )
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())
    pg = load_settings({"MLFLOW_TRACKING_URI": "postgresql://analyst:hunter2@db/mlflow"})
    assert "hunter2" not in pg.display_uri()


def test_help_does_not_import_mlflow() -> None:
    code = (
        "import sys; from analyze_experiment.agent.app.cli import main\ntry:\n main(['--help'])\nexcept SystemExit: pass\n"
        "print('mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")
    assert "insights" in out.stdout and "doctor" in out.stdout


def test_doctor_reports_store_experiment_and_traces(cli: CliRunner, store: Store) -> None:
    report = cli.ok("doctor", "-o", "json").json()
    assert report["store_kind"] == "sqlite"
    assert report["experiment"] == {"experiment_id": store.experiment_id, "name": "support-agent"}
    assert report["trace_count"] == len(store.traces.trace_ids())  # type: ignore[attr-defined]
    assert len(report["sample"]) == 5 and report["problem"] is None


def test_doctor_without_experiment_lists_them(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")
    result = cli("doctor")
    assert result.exit_code == 2
    assert "support-agent" in result.stdout
    assert "no experiment chosen" in result.stderr


def test_doctor_on_an_empty_experiment(cli: CliRunner, store: Store) -> None:
    empty = store.client().create_experiment("empty", artifact_location=str(store.db_path.parent / "e"))
    message = cli.refused("doctor", "--experiment-id", empty)
    assert "has no traces" in message


def test_mistyped_store_path_is_not_created(cli: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "mlflow.db"
    message = cli.refused("--tracking-uri", f"sqlite:///{missing}", "doctor")
    assert "no MLflow store" in message
    assert not missing.exists()


def test_env_file_that_does_not_exist(cli: CliRunner) -> None:
    assert "does not exist" in cli.refused("--env-file", "missing.env", "doctor")


def _deny(handler: BaseHTTPRequestHandler, message: str) -> None:
    """A 403 in Databricks' error shape, echoing what the server was sent (a leak the client must redact)."""
    body = json.dumps({"error_code": "PERMISSION_DENIED", "message": message})
    handler.send_response(403)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    handler.wfile.write(body.encode())


class EchoingDatabricks(BaseHTTPRequestHandler):
    """A stand-in Databricks that refuses every call and, carelessly, echoes the credentials back."""

    def do_GET(self) -> None:
        _deny(self, f"token {self.headers.get('Authorization')} may not read this")

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echoing_databricks() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingDatabricks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_errors_never_show_secrets(cli: CliRunner, monkeypatch: pytest.MonkeyPatch, echoing_databricks: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "databricks")
    monkeypatch.setenv("DATABRICKS_HOST", echoing_databricks)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    for output in ("table", "json"):
        result = cli("doctor", "--experiment-id", "1", "-o", output)
        assert result.exit_code != 0
        assert "may not read this" in result.stderr  # the server's message got through...
        assert TOKEN not in result.stdout + result.stderr  # ...without the token
        assert "Bearer ***" in result.stderr


def test_doctor_explains_an_unreachable_server_at_once(cli: CliRunner) -> None:
    """MLflow's client would retry a dead address for minutes; doctor asks once and says so."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        message = cli.refused("--tracking-uri", f"http://127.0.0.1:{port}", "doctor", "-x", "1")
    assert f"nothing answers at http://127.0.0.1:{port}" in message and "mlflow server" in message


def test_every_command_fails_fast_on_a_dead_server(cli: CliRunner) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = cli("--tracking-uri", f"http://127.0.0.1:{port}", "insights", "list-analyses", "-x", "1")
    assert result.exit_code == 1
    assert f"nothing answers at http://127.0.0.1:{port}" in result.stderr


PASSWORD = "s3cret-pass-0123456789"
MLFLOW_TOKEN = "mlflow-token-abcdef0123456789"


@pytest.fixture
def guarded_server() -> Iterator[tuple[str, list[str]]]:
    """Stands in for an `mlflow server` behind auth: records the credentials each call brings, refuses
    them all, and carelessly echoes them back."""
    import base64

    seen: list[str] = []

    class Guarded(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            header = self.headers.get("Authorization", "")
            seen.append(header)
            scheme, _, value = header.partition(" ")
            shown = base64.b64decode(value).decode() if scheme == "Basic" else value
            _deny(self, f"{shown!r} may not read this")

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Guarded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("credentials", "header", "secret"),
    [
        (
            f"MLFLOW_TRACKING_USERNAME=alice\nMLFLOW_TRACKING_PASSWORD={PASSWORD}\n",
            "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode(),
            PASSWORD,
        ),
        (f"MLFLOW_TRACKING_TOKEN={MLFLOW_TOKEN}\n", f"Bearer {MLFLOW_TOKEN}", MLFLOW_TOKEN),
    ],
)
def test_env_file_credentials_reach_the_tracking_server(
    tmp_path: Path, guarded_server: tuple[str, list[str]], credentials: str, header: str, secret: str
) -> None:
    """They were read from --env-file but never exported, so MLflow's client logged in without them."""
    from tests.helpers import cli_process

    url, seen = guarded_server
    env_file = tmp_path / "server.env"
    env_file.write_text(credentials)
    for output in ("table", "json"):
        done = cli_process(url, tmp_path / "home", "--env-file", str(env_file), "doctor", "-x", "1", "-o", output)
        assert done.returncode == 2, done.stderr
        assert "may not read this" in done.stderr  # the server's answer got through...
        assert secret not in done.stdout + done.stderr  # ...without the secret it echoed
    assert seen and set(seen) == {header}


def test_settings_never_show_mlflow_credentials(tmp_path: Path) -> None:
    env_file = tmp_path / "server.env"
    env_file.write_text(
        f"MLFLOW_TRACKING_USERNAME=alice\nMLFLOW_TRACKING_PASSWORD={PASSWORD}\nMLFLOW_TRACKING_TOKEN={MLFLOW_TOKEN}\n"
    )
    settings = load_settings({}, env_file=env_file)
    assert PASSWORD not in repr(settings) + str(settings.model_dump()) and MLFLOW_TOKEN not in repr(settings)
    from analyze_experiment.agent.core.services import Services

    assert Services(settings).redact(f"p={PASSWORD} t={MLFLOW_TOKEN}") == "p=*** t=***"


def test_mlflow_artifact_progress_bars_are_off_unless_asked_for(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR as BAR

    monkeypatch.setenv(BAR.name, "placeholder")  # so that the end of the test puts back what was there
    monkeypatch.delenv(BAR.name)
    cli.ok("doctor", "-o", "json")
    assert BAR.get() is False
    env_file = tmp_path / "bars.env"
    env_file.write_text(f"{BAR.name}=true\n")
    cli.ok("--env-file", str(env_file), "doctor", "-o", "json")
    assert BAR.get() is True


@pytest.mark.slow
@pytest.mark.parametrize(
    ("store", "command", "expected"),
    [
        ("embedded", ("demo", "--traces", "2"), []),
        ("new sqlite file", ("demo", "--traces", "2"), []),
        ("embedded", ("doctor",), ["error: no experiment chosen"]),  # connects before anything imports MLflow
    ],
)
def test_a_new_store_prints_no_mlflow_info_lines(
    tmp_path: Path, store: str, command: tuple[str, ...], expected: list[str]
) -> None:
    """MLflow logs "Creating initial MLflow database tables" and "Updating database tables" at INFO."""
    from tests.helpers import cli_process

    uri = "" if store == "embedded" else f"sqlite:///{tmp_path / 'new.db'}"
    done = cli_process(uri, tmp_path / "home", *command)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == len(expected), done.stderr
    assert all(line.startswith(start) for line, start in zip(lines, expected, strict=True)), done.stderr
