"""Approving analyses from Slack. Only this package imports slack_bolt / slack_sdk (ruff enforces it)."""
