"""Simulated traced agents with known problems: the demo experiment and the eval scenarios."""
