"""The analysts that drive an analysis. `detectors` holds the offline analyst's evidence-finding core."""
