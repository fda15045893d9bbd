"""The front ends (CLI, Slack) and the session layer they share."""
