"""One module per phase of the workflow."""
