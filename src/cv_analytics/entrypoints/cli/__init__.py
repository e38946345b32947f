"""The ``cv-analytics`` command line: one module per command group, mounted on :data:`app`."""

from .app import app

__all__ = ["app"]
