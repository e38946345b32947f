"""The web app: one FastAPI application over the wiring (``cv-analytics serve``, and Lambda through mangum).

Routers live in their own modules and :func:`~cv_analytics.entrypoints.web.app.create_app`
mounts them; each takes what it needs from :mod:`.deps` (the wiring, the API key check).
"""

from .app import create_app

__all__ = ["create_app"]
