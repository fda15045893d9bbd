"""What every layer stands on: settings, errors, the insights library, trace access and SQL."""
