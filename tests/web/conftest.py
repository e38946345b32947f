"""Fixtures of the web tests: an app over embedded backends in a temporary directory, the worker, a live server.

The server and browser helpers live in :mod:`tests.web.browser` for other test packages to reuse.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cv_analytics.entrypoints.web import create_app
from cv_analytics.processor import Worker
from cv_analytics.wiring import Settings, Wiring

from .browser import CHROMIUM, CHROMIUM_MISSING, chromium, running_server

API_KEY = "test-key-0123456789"


def web_settings(data_dir: pathlib.Path, **env: str) -> Settings:
    """Settings of an embedded install under ``data_dir`` with the test API key and lexical retrieval
    (BM25: no embedding model to load in every test); ``env`` adds or overrides variables."""
    variables = {
        "CV_ANALYTICS_DATA_DIR": str(data_dir),
        "CV_ANALYTICS_API_KEYS": API_KEY,
        "CV_ANALYTICS_RETRIEVAL": "bm25",
        **env,
    }
    return Settings.from_env(variables)


@pytest.fixture
def settings(tmp_path: pathlib.Path) -> Settings:
    return web_settings(tmp_path / "data")


@pytest.fixture
def wiring(settings: Settings) -> Iterator[Wiring]:
    with Wiring(settings) as made:
        yield made


@pytest.fixture
def app(wiring: Wiring) -> FastAPI:
    return create_app(wiring)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app in-process, its lifespan run (so its analytics client is open)."""
    with TestClient(app) as test_client:
        yield test_client


def drain_app(app: FastAPI, wiring: Wiring) -> Any:
    """Flush the app's analytics client, then run the analytics worker until the queue is empty."""
    analytics = app.state.analytics
    if analytics is not None:
        assert analytics.flush(10.0), "the analytics client did not flush"
    return Worker(wiring.queue(), wiring.store, wait_seconds=0.0).run(drain=True)


@pytest.fixture
def drain(app: FastAPI, wiring: Wiring) -> Callable[[], Any]:
    """:func:`drain_app` for the test's app."""
    return lambda: drain_app(app, wiring)


@pytest.fixture
def auth() -> dict[str, str]:
    return {"x-api-key": API_KEY}


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a free loopback port; its base URL."""
    with running_server(app) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian chromium through Playwright; skipped, saying why, when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(CHROMIUM_MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, chromium(playwright) as launched:
        yield launched
