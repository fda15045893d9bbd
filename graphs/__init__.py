"""The analysis as a LangGraph state machine: state, nodes per phase, routes, approvals, the factory."""
