"""The app installs as a tool under one import name, `analyze_experiment`, with only the clients it needs."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_name(tmp_path: Path) -> None:
    subprocess.run(["uv", "build", "--wheel", "--out-dir", str(tmp_path), "--quiet"], cwd=ROOT, check=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"analyze_experiment"}
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "analyze-experiment = analyze_experiment.agent.app.cli:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
    assert not any("/tests/" in name or name.startswith("tests/") for name in names)
    assert "analyze_experiment/evals/scenarios/support/traces.json.gz" in names  # `evals load` works installed
    assert "analyze_experiment/prompts/test.md" in names  # prompts ship with the tool


@pytest.mark.slow
def test_the_installed_tool_lives_beside_other_tools_and_evals_packages(tmp_path: Path) -> None:
    """Generic names are taken: an environment that already has `tools` and `evals` keeps both, and the
    installed tool (a wheel built from this tree, not the editable checkout) still runs a whole analysis."""
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "--quiet", str(venv)], check=True)
    (site,) = venv.glob("lib/python3*/site-packages")
    for name in ("tools", "evals"):
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(f"OWNER = 'someone else: {name}'\n")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "MLFLOW_DISABLE_TELEMETRY": "true"}
    for inherited in ("VIRTUAL_ENV", "PYTHONPATH"):  # nothing of this checkout may be on the path
        env.pop(inherited, None)
    # --offline: the packages come from the cache `uv sync` filled; --inexact keeps the two strangers
    sync = ["uv", "sync", "--locked", "--no-editable", "--no-dev", "--inexact", "--offline", "--quiet"]
    subprocess.run(sync, cwd=ROOT, env=env, check=True)
    python = str(venv / "bin" / "python")
    owners = "import tools, evals; print(tools.OWNER, '|', evals.OWNER)"
    shown = subprocess.run([python, "-c", owners], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "someone else: tools | someone else: evals"
    run = [str(venv / "bin" / "analyze-experiment"), "run", "--demo", "--approve", "auto", "-o", "json"]
    home = {**env, "ANALYZE_EXPERIMENT_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    home.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(run, cwd=tmp_path, env=home, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout)
    assert outcome["phase"] == "complete" and Path(outcome["report"]).is_file()
    where = subprocess.run(
        [python, "-c", "import analyze_experiment; print(analyze_experiment.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site))  # the installed copy, not this checkout


def test_a_plain_install_leaves_out_the_spark_and_databricks_clients() -> None:
    """`uv run` in a fresh clone installs the default groups: pyspark (a 456 MB source archive to
    build) and the Databricks client come only with the `engines` group that CI names."""

    def locked(*group: str) -> str:
        command = ["uv", "export", "--frozen", "--no-hashes", "--format", "requirements-txt", *group]
        return subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout

    assert "pyspark" not in locked() and "databricks-sql-connector" not in locked()
    assert "pyspark" in locked("--group", "engines") and "databricks-sql-connector" in locked("--group", "engines")
