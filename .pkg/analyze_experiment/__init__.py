"""analyze-experiment: find what is wrong with an LLM agent from its MLflow traces.

The repository keeps its parts as top-level folders; installed, they live under this one name. See
docs/architecture.md ("One import name") for how the folders become `analyze_experiment.*`.
"""
