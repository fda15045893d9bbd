"""The app installs as a tool: its wheel holds only our own top-level packages and the entry point."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Generic names like `tools` or `graphs` must never land in site-packages by accident; each one added
# to the wheel is a deliberate change to this list.
TOP_LEVEL = {"agent", "evals", "graphs", "prompts", "tools"}


@pytest.mark.slow
def test_wheel_contains_only_our_top_level_names(tmp_path: Path) -> None:
    subprocess.run(["uv", "build", "--wheel", "--out-dir", str(tmp_path), "--quiet"], cwd=ROOT, check=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == TOP_LEVEL
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "analyze-experiment = agent.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any("/tests/" in name or name.startswith("tests/") for name in names)
    assert "evals/scenarios/support/traces.json.gz" in names  # `evals load` works from an installed tool
    assert "prompts/test.md" in names  # prompts ship with the tool


def test_a_plain_install_leaves_out_the_spark_and_databricks_clients() -> None:
    """`uv run` in a fresh clone installs the default groups: pyspark (a 456 MB source archive to
    build) and the Databricks client come only with the `engines` group that CI names."""

    def locked(*group: str) -> str:
        command = ["uv", "export", "--frozen", "--no-hashes", "--format", "requirements-txt", *group]
        return subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout

    assert "pyspark" not in locked() and "databricks-sql-connector" not in locked()
    assert "pyspark" in locked("--group", "engines") and "databricks-sql-connector" in locked("--group", "engines")
