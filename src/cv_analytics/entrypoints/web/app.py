"""The one FastAPI application: ``cv-analytics serve`` runs it under uvicorn, Lambda through mangum."""

from __future__ import annotations

from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

from fastapi import FastAPI

from ...wiring import Wiring
from ..version import package_version
from . import health, jobs_api
from .limits import EVENTS_MAX_BODY_BYTES, BodyLimitMiddleware


def create_app(wiring: Wiring | None = None, *, close_wiring: bool | None = None) -> FastAPI:
    """The app over ``wiring`` (made from the environment when None, and then closed at shutdown)."""
    owned = wiring is None if close_wiring is None else close_wiring
    wiring = wiring or Wiring()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            wiring.close()

    app = FastAPI(
        title="cv-analytics",
        version=package_version(),
        description="Analytics pipeline and async AI-jobs service for a CV chatbot.",
        lifespan=lifespan,
    )
    app.state.wiring = wiring
    app.add_middleware(BodyLimitMiddleware, limits={"/v1/events": EVENTS_MAX_BODY_BYTES})
    app.include_router(health.router)
    app.include_router(jobs_api.router)
    return app
