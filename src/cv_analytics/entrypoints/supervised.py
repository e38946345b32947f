"""Run a ``cv-analytics`` command as a child of ``serve``: ``python -m cv_analytics.entrypoints.supervised PARENT_PID NICE ARGS...``.

It first asks Linux to send it SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``),
then checks the parent is still the one that started it (it may have died before
the request), lowers its CPU priority to NICE before its imports (a restart's
start-up then yields to the requests too), then runs the command as
``cv-analytics ARGS...`` would. Elsewhere
than on Linux the first step is skipped: ``serve`` still stops its children when
it is stopped, but a ``kill -9`` of it leaves them running.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from .priority import lower_priority

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        sys.exit(0)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit() or not argv[1].isdigit():
        sys.exit("usage: python -m cv_analytics.entrypoints.supervised PARENT_PID NICE ARGS...")
    _die_with_parent(int(argv[0]))
    lower_priority(int(argv[1]))
    from .cli import app  # imported only now, at the lower priority

    app(args=argv[2:], prog_name="cv-analytics")


if __name__ == "__main__":
    main(sys.argv[1:])
