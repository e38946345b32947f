"""AWS entry points still to be moved under :mod:`cv_analytics.entrypoints`."""
