"""The only way the analysis graph touches state: typed tools over `analyze_experiment.agent.core.insights` and `analyze_experiment.agent.core.traces`.

`Toolbox` is what nodes and analysts call; `catalog` exposes the agent-facing part of it to a chat
model as LangChain tools; `decisions` is the part only an approval (a person) may use.
"""
