"""The dashboard (``/dashboard``): the weekly report as pages, the pipeline's health, login."""

from .routes import router

__all__ = ["router"]
