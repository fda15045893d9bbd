"""LangGraph's own tooling (`langgraph dev`, LangGraph Studio) loads the workflow from langgraph.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from langgraph.graph.state import CompiledStateGraph

from analyze_experiment.graphs.factory import NODES, build_graph

ROOT = Path(__file__).resolve().parents[1]


def test_langgraph_json_names_the_compiled_workflow() -> None:
    """As the server's loader does: each graph is `file:variable`, the file imported as a module of its
    own from the config's directory, the variable a compiled graph or a factory that takes a config."""
    config = json.loads((ROOT / "langgraph.json").read_text(encoding="utf-8"))
    assert config["dependencies"] == ["."] and config["graphs"]
    for name, entry in config["graphs"].items():
        path, variable = entry.rsplit(":", 1)
        spec = importlib.util.spec_from_file_location(f"langgraph_config_{name}", ROOT / path)
        assert spec is not None and spec.loader is not None, entry
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded = getattr(module, variable)
        if not isinstance(loaded, CompiledStateGraph):
            loaded = loaded({"configurable": {}})
        assert isinstance(loaded, CompiledStateGraph), entry
        drawn, ours = loaded.get_graph(), build_graph().get_graph()
        assert set(NODES) <= set(drawn.nodes)
        assert {(e.source, e.target) for e in drawn.edges} == {(e.source, e.target) for e in ours.edges}
