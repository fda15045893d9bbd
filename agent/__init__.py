"""The analyst's own code below the graph: `core` (state, traces, settings) and `app` (the front ends)."""
