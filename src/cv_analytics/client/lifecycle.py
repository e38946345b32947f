"""Process-wide lifecycle of the clients: drain at exit and on SIGTERM.

Every live client is in :data:`live_clients`. At interpreter exit each one sends
what it can within its ``shutdown_timeout`` and spools the rest; SIGTERM does
the same when the application has not claimed the signal (see
:func:`install_sigterm_drain`), because Python's default SIGTERM action ends the
process without running exit hooks (issue 7, item 10).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import AnalyticsClient

logger = logging.getLogger("cv_analytics.client")

#: The clients of this process that are not closed yet.
live_clients: weakref.WeakSet[AnalyticsClient] = weakref.WeakSet()


def close_all() -> None:
    """Close every live client within its own bound (at exit, on SIGTERM): send, then spool the rest."""
    # Daemon threads are still running while atexit hooks run: drain within each
    # client's bound, spool what is left rather than lose it.
    for client in list(live_clients):
        try:
            client.close(client.shutdown_timeout)
        except Exception:  # an exit hook must not hide the program's own exit status
            logger.exception("closing the analytics client at exit failed")


def _drain_then_default(signum: int, frame: Any) -> None:
    # Python's default SIGTERM ends the process without atexit hooks: drain first, then
    # let the default action end it (its exit status says "terminated by SIGTERM")
    close_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _chained(previous: Callable[[int, Any], Any]) -> Callable[[int, Any], Any]:
    def drain_then_previous(signum: int, frame: Any) -> Any:
        close_all()
        return previous(signum, frame)

    drain_then_previous._cv_analytics_drain = True  # type: ignore[attr-defined]
    return drain_then_previous


_drain_then_default._cv_analytics_drain = True  # type: ignore[attr-defined]


def install_sigterm_drain() -> bool:
    """Make SIGTERM drain (or spool) every client's buffer, as a normal exit does.

    Called by every new client; only acts from the main thread (the only one
    that may set handlers). With Python's default SIGTERM action it installs a
    handler that closes the clients within their ``shutdown_timeout`` and then
    re-delivers SIGTERM with the default action; with a Python handler the
    application installed, it chains: drain, then call that handler; an ignored
    SIGTERM (``SIG_IGN``), or a handler installed outside Python, is left alone.
    A handler the application installs later replaces this one (its choice).
    Returns whether a drain is now on SIGTERM.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if getattr(previous, "_cv_analytics_drain", False):
        return True
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _drain_then_default)
        return True
    if callable(previous):
        signal.signal(signal.SIGTERM, _chained(previous))
        return True
    return False  # SIG_IGN, or None: a handler not installed from Python


atexit.register(close_all)
