"""``serve``'s child processes: started together, restarted with backoff when one dies, stopped together.

Each child is ``python -m cv_analytics.entrypoints.supervised PARENT_PID NICE
<cv-analytics arguments>``, which asks Linux to send it SIGTERM when its parent
dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` of ``serve`` leaves no worker
behind. Children run in their own process group: a Ctrl-C in the terminal
reaches ``serve`` only, which stops them in order (SIGTERM, a bounded wait,
then SIGKILL), rather than racing their restart.

The parent-death signal is tied to the *thread* that started the child, so one
long-lived thread (the supervisor's) starts, restarts and stops every child.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..._backoff import backoff_delay
from .errors import USAGE_EXIT_CODE

log = logging.getLogger(__name__)

#: A child that ran this long before dying starts its backoff over.
STABLE_SECONDS = 60.0
#: Seconds between looks at the children.
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ChildSpec:
    """A child: its name in messages, the ``cv-analytics`` arguments that run it, and its CPU priority."""

    name: str
    args: tuple[str, ...]
    #: set before the child imports anything (background work yields to the requests from its start)
    nice: int = 0


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    #: stopped for good (a configuration error: restarting cannot help)
    given_up: bool = False


class Supervisor:
    """Runs ``children`` until :meth:`stop`; ``say`` gets one line per start, death and restart."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        env: Mapping[str, str],
        stop_timeout: float = 10.0,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        say: Callable[[str], object] = print,
        rng: random.Random | None = None,
    ) -> None:
        self._children = [_Child(spec) for spec in children]
        self._env = dict(env)
        self.stop_timeout = stop_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._say = say
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="cv-analytics-supervisor", daemon=True)

    def start(self) -> None:
        """Start the children (not after :meth:`stop`)."""
        with self._lock:
            if not self._stop.is_set():
                self._thread.start()

    def stop(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL after ``stop_timeout``) and return once they are gone."""
        with self._lock:
            self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def pids(self) -> dict[str, int]:
        """The running children's process ids by name."""
        return {
            c.spec.name: c.process.pid for c in self._children if c.process is not None and c.process.poll() is None
        }

    # -- the supervisor's thread ----------------------------------------------------

    def _run(self) -> None:
        try:
            for child in self._children:
                self._spawn(child)
            while not self._stop.wait(POLL_SECONDS):
                for child in self._children:
                    self._watch(child)
        finally:
            self._stop_all()

    def _spawn(self, child: _Child) -> None:
        command = [
            sys.executable, "-m", "cv_analytics.entrypoints.supervised",
            str(os.getpid()), str(child.spec.nice), *child.spec.args,
        ]  # fmt: skip
        try:
            child.process = subprocess.Popen(command, env=self._env, process_group=0)
        except OSError as exc:
            self._say(f"{child.spec.name}: could not start ({exc}); retrying")
            child.process = None
            self._schedule_restart(child, time.monotonic())
            return
        child.started_at = time.monotonic()
        child.restart_at = None
        self._say(f"{child.spec.name}: started (pid {child.process.pid})")

    def _watch(self, child: _Child) -> None:
        now = time.monotonic()
        if child.given_up:
            return
        if child.process is None:
            if child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
            return
        code = child.process.poll()
        if code is None:
            return
        child.process = None
        if code == USAGE_EXIT_CODE:
            child.given_up = True
            self._say(f"{child.spec.name}: exited with status {code} (a configuration problem, see above): not restarted")
            return
        if now - child.started_at >= STABLE_SECONDS:
            child.failures = 0
        self._schedule_restart(child, now)
        self._say(f"{child.spec.name}: exited with status {code}; restarting in {child.restart_at - now:.1f}s")  # type: ignore[operator]

    def _schedule_restart(self, child: _Child, now: float) -> None:
        # "equal jitter": at least half the exponential delay, so a child that dies at once never spins
        child.failures += 1
        half = min(self.backoff_max, self.backoff_base * 2 ** min(child.failures - 1, 30)) / 2
        child.restart_at = now + half + backoff_delay(child.failures, self.backoff_base / 2, self.backoff_max / 2, self._rng)

    def _stop_all(self) -> None:
        running = [c for c in self._children if c.process is not None and c.process.poll() is None]
        for child in running:
            _signal(child.process, terminate=True)  # type: ignore[arg-type]
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            process = child.process
            assert process is not None
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(f"{child.spec.name}: still running {self.stop_timeout:g}s after SIGTERM: killed")
                _signal(process, terminate=False)
                process.wait()
        for child in self._children:
            child.process = None


def _signal(process: subprocess.Popen[bytes], *, terminate: bool) -> None:
    try:
        process.terminate() if terminate else process.kill()
    except ProcessLookupError:  # it ended in between
        pass
