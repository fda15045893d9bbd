"""analyze-experiment: find what is wrong with an LLM agent from its MLflow traces."""
