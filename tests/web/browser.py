"""Reusable by any test package: a real uvicorn server on a free loopback port, and Debian's chromium.

``running_server(app)`` serves an ASGI app from a thread and yields its base URL;
``chromium(playwright)`` launches ``/usr/bin/chromium`` headless through Playwright's
``executable_path`` (no browser download), and ``CHROMIUM_MISSING`` is the skip reason
when it is not installed (``make test`` installs it).
"""

from __future__ import annotations

import contextlib
import pathlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CHROMIUM_MISSING = f"{CHROMIUM} is not installed (apt-get install chromium; `make test` does it)"


@contextlib.contextmanager
def running_server(app: Any, *, startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread; yields ``http://127.0.0.1:PORT``.

    The socket is bound before the thread starts, so the port cannot be taken in between.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start (see the log)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
        sock.close()


@contextlib.contextmanager
def chromium(playwright: Any) -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright (a ``playwright.sync_api.Playwright``)."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True)
    try:
        yield browser
    finally:
        browser.close()
