"""The one FastAPI application: ``cv-analytics serve`` runs it under uvicorn, Lambda through mangum."""

from __future__ import annotations

import logging
import pathlib
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from ...client import AnalyticsClient
from ...wiring import Wiring
from ...wiring.client import open_client
from ..version import package_version
from . import chat, errors, health, ingest, jobs_api, metrics, search
from .limits import EVENTS_MAX_BODY_BYTES, BodyLimitMiddleware

log = logging.getLogger(__name__)


def create_app(
    wiring: Wiring | None = None,
    *,
    close_wiring: bool | None = None,
    worker_metrics_dir: pathlib.Path | None = None,
) -> FastAPI:
    """The app over ``wiring`` (made from the environment when None, and then closed at shutdown).

    At start-up it opens the process's analytics client (unless
    ``CV_ANALYTICS_ANALYTICS_ENABLED=0``) and builds the assistant; at shutdown it
    closes the client, which sends what it holds within its shutdown timeout and
    spools the rest. ``worker_metrics_dir`` is the prometheus-client multiprocess
    directory of the workers ``serve`` runs, shown on ``/metrics``.
    """
    owned = wiring is None if close_wiring is None else close_wiring
    wiring = wiring or Wiring()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if wiring.settings.analytics_enabled:
            # opened off the main thread, so it does not claim SIGTERM: the server's graceful shutdown
            # stops requests first, then this lifespan closes the client (the exit hook stays as a backstop)
            app.state.analytics = await run_in_threadpool(open_client, wiring.settings)
        await run_in_threadpool(_build_assistant, wiring)
        try:
            yield
        finally:
            client: AnalyticsClient | None = app.state.analytics
            app.state.analytics = None
            if client is not None:
                await run_in_threadpool(client.close, client.shutdown_timeout)
            if owned:
                wiring.close()

    app = FastAPI(
        title="cv-analytics",
        version=package_version(),
        description="Analytics pipeline and async AI-jobs service for a CV chatbot.",
        lifespan=lifespan,
        # the interactive docs load their scripts from a CDN, and the machine may be offline: the spec is at /openapi.json
        docs_url=None,
        redoc_url=None,
    )
    app.state.wiring = wiring
    errors.install(app)
    app.state.analytics = None
    app.state.metrics = metrics.app_metrics(wiring, lambda: app.state.analytics, worker_metrics_dir)
    app.add_middleware(BodyLimitMiddleware, limits={"/v1/events": EVENTS_MAX_BODY_BYTES})
    app.add_middleware(metrics.RequestMetricsMiddleware, histogram=app.state.metrics.http_latency)
    app.include_router(health.router)
    app.include_router(jobs_api.router)
    app.include_router(search.router)
    app.include_router(chat.router)
    app.include_router(ingest.router)
    app.include_router(metrics.router)
    app.mount(chat.STATIC_PATH, chat.static_files(), name="static")
    return app


def _build_assistant(wiring: Wiring) -> None:
    """Load the catalog and the retriever (an embedding model takes seconds) before the first question.

    A failure is logged, not fatal: ``/api/search`` answers 503 saying why, the rest of the app serves.
    """
    try:
        wiring.assistant
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("the assistant could not be built; /api/search answers 503 until it can")
