"""Generators of eval cases: random agents with planted problems (random_agents) and their power (power)."""
