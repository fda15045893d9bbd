"""The layering rules, checked on the source: which layer may import which, and what graph code may import.

Ruff's banned-api rule is a deny list; what graph code may import is an allow list, so it is checked here,
on every import in the tree, by `tests/test_layering.py`. Run `python -m tests.layers` to see violations.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "analyze_experiment"
FOLDERS = ("agent", "tools", "graphs", "prompts", "evals")

# Bottom to top: a layer imports only from the layers below it, so none can form a cycle.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("agent.core",)),
    ("simulation", ("agent.simulation",)),
    ("tools", ("tools",)),
    ("prompts", ("prompts",)),
    ("graph", ("graphs",)),
    ("session", ("agent.app.session", "agent.app.console", "agent.app.demo")),
    ("evals", ("evals",)),
    ("front ends", ("agent.app.cli", "agent.app.slack", "agent.app")),
]

# What graph code (nodes, routes, analysts) may import besides the standard library: LangGraph and the
# model clients, the tools' protocols (never the toolbox, the services or the person's decisions), and
# the core's pure parts (models, report, discovery over an engine the tools hand out).
GRAPH_MAY_IMPORT = (
    "langgraph",
    "langchain_core",
    "langchain_openai",
    "openai",
    "pydantic",
    "tenacity",
    "numpy",
    f"{PACKAGE}.graphs",
    f"{PACKAGE}.prompts",
    f"{PACKAGE}.tools.protocols",
    f"{PACKAGE}.tools.budget",
    f"{PACKAGE}.tools.events",
    f"{PACKAGE}.tools.catalog",
    f"{PACKAGE}.agent.core.approvals",
    f"{PACKAGE}.agent.core.errors",
    f"{PACKAGE}.agent.core.failpoints",
    f"{PACKAGE}.agent.core.insights.models",
    f"{PACKAGE}.agent.core.wording",
    f"{PACKAGE}.agent.core.report",
    f"{PACKAGE}.agent.core.discovery",
    f"{PACKAGE}.agent.core.settings",
    f"{PACKAGE}.agent.core.traces.views",
    f"{PACKAGE}.agent.core.traces.engine",
    f"{PACKAGE}.agent.core.traces.sql",
    f"{PACKAGE}.agent.core.traces.census",
)


def layer_of(module: str) -> int | None:
    """The index of the layer a module of ours belongs to (the most specific prefix wins)."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            full = f"{PACKAGE}.{prefix}"
            if (module == full or module.startswith(full + ".")) and (best is None or len(full) > best[1]):
                best = (index, len(full))
    return None if best is None else best[0]


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imports_of(source: str) -> Iterator[str]:
    """Every module an import statement names, at any depth (function-level imports count too)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` names a.b.c, which may be a module (failpoints) or a name in one
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def violations(sources: Iterable[tuple[str, str]]) -> list[str]:
    """(module, source) pairs in, one line per broken rule out."""
    found = []
    for module, source in sources:
        here = layer_of(module)
        for imported in imports_of(source):
            there = layer_of(imported) if _within(imported, PACKAGE) else None
            if here is not None and there is not None and there > here:
                found.append(f"{module} ({LAYERS[here][0]}) imports {imported} ({LAYERS[there][0]}), a layer above it")
            in_graph = _within(module, f"{PACKAGE}.graphs")
            top = imported.split(".")[0]
            if (
                in_graph
                and top not in sys.stdlib_module_names
                and not any(_within(imported, a) for a in GRAPH_MAY_IMPORT)
            ):
                found.append(f"{module} (graph) imports {imported}, which graph code may not")
    return found


def tree() -> Iterator[tuple[str, str]]:
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            named = parts[:-1] if parts[-1] == "__init__" else parts
            yield ".".join((PACKAGE, *named)), path.read_text()


if __name__ == "__main__":
    problems = violations(tree())
    print("\n".join(problems) or "the layers hold")
    sys.exit(1 if problems else 0)
