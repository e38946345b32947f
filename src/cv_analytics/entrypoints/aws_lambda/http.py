"""``http_api(event, context)``: the web app (the jobs API and the rest) behind the API Gateway HTTP API.

The same FastAPI app as ``cv-analytics serve`` (:func:`~cv_analytics.entrypoints.web.app.create_app`),
made once per container over one wiring and adapted to API Gateway's
events (payload format 2.0, and 1.0 or an ALB's alike) by mangum. The app's
lifespan is not run on Lambda (mangum would run it around every invocation):
what the app needs is made on first use, through the wiring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .warm import http_api_state


def http_api(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda handler of the HTTP API: one request in, its response out."""
    state = http_api_state()
    state.invocations += 1
    return state.adapter(event, context)  # type: ignore[no-any-return]
