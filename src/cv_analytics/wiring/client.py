"""One analytics client per process, configured from the environment (the documented pattern)."""

from __future__ import annotations

import os
import threading
from typing import Any

from ..client import AnalyticsClient
from ..client.client import QueueOrFactory
from .backends import open_queue
from .settings import Settings

_default: AnalyticsClient | None = None
_default_lock = threading.Lock()


def open_client(settings: Settings, **options: Any) -> AnalyticsClient:
    """A new client on the analytics queue ``settings`` name, spooling under their data directory.

    For a program that owns its client's lifetime (the web app opens one at
    start-up and closes it at shutdown); ``options`` are :class:`AnalyticsClient`'s.
    """
    return AnalyticsClient(lambda: open_queue(settings), **_spool_options(settings, options))  # opened on the sender thread


def _spool_options(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the spool's directory and bound from ``settings`` where the caller gave none."""
    options.setdefault("spool_dir", settings.spool_dir)
    if settings.spool_max_bytes is not None:
        options.setdefault("max_spool_bytes", settings.spool_max_bytes)
    return options


def _client_from_environment(**options: Any) -> AnalyticsClient:
    return open_client(Settings.from_env(), **options)


def configure(queue: QueueOrFactory | None = None, **options: Any) -> AnalyticsClient:
    """Set up the process-wide client (closing the previous one) and return it.

    ``queue`` defaults to the analytics queue the environment names
    (``CV_ANALYTICS_QUEUE_URL``, ``AWS_SQS_URL``, else the embedded SQLite queue
    under ``CV_ANALYTICS_DATA_DIR``); ``options`` are :class:`AnalyticsClient`'s
    (``spool_dir`` defaults to ``$CV_ANALYTICS_DATA_DIR/spool``, ``max_spool_bytes`` to
    ``$CV_ANALYTICS_SPOOL_MAX_BYTES``). Call it once at
    start-up (e.g. in a FastAPI lifespan handler).
    """
    global _default
    with _default_lock:
        previous = _default
        if queue is None:
            _default = _client_from_environment(**options)
        else:
            _default = AnalyticsClient(queue, **_spool_options(Settings.from_env(), options))
        client = _default
    if previous is not None:
        previous.close(previous.shutdown_timeout)
    return client


def get_client() -> AnalyticsClient:
    """The process-wide client: the one :func:`configure` set up, else one configured from the environment.

    Every request handler calls ``get_client()`` and logs through the same
    client, whose one sender thread starts on first use.
    """
    global _default
    client = _default
    if client is not None:
        return client
    with _default_lock:
        if _default is None:
            _default = _client_from_environment()
        return _default


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
