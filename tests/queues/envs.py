"""Queue backends as test environments, and the ``queue_env`` fixture over all of them.

A backend joins by adding a param to :func:`queue_env` and an environment class
with the same surface as :class:`SQLiteQueueEnv`:

``make_queue(name, config)``
    a fresh queue (FIFO names end in ``.fifo``, as SQS requires);
``advance(seconds)``
    let time pass: the manual clock moves, a real-time backend sleeps; tests keep
    it to a couple of seconds, and those that must travel further (the 5-minute
    deduplication window, 4-day retention) are marked ``needs_clock`` and skipped
    where time is real;
``process_opener(name, config)``
    a callable that opens the same queue in a forked worker process, on the real
    clock (None where the backend lives in one process);
``unavailable()``
    a context manager during which the queue cannot be reached (None where it
    cannot become unreachable).

Other suites (processor, jobs) reuse it: ``from tests.queues.envs import
queue_env`` in their conftest gives them the same parametrization.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.queues.base import Queue, QueueConfig
from cv_analytics.queues.memory import MemoryQueueBackend
from cv_analytics.queues.sqlite import SQLiteQueueBackend


class ThreadedManualClock(ManualClock):
    """A manual clock that lets other threads of the test act before it moves time on.

    A long poll on a manual clock would otherwise skip its whole wait before a
    sender thread has run: ``wait`` with an event first gives the event up to
    ``grace`` real seconds, then advances the clock as :class:`ManualClock` does.
    """

    def __init__(self, grace: float = 0.05) -> None:
        super().__init__()
        self.grace = grace

    def wait(self, seconds: float, event: threading.Event | None = None) -> bool:
        if event is not None and threading.active_count() > 1 and event.wait(min(self.grace, max(0.0, seconds))):
            return True
        return super().wait(seconds, event)


class SQLiteQueueEnv:
    """The embedded backend on a temporary file, on a manual clock."""

    name = "sqlite"
    #: time is faked here: advance() is instant and tests may travel days
    real_time = False

    def __init__(self, tmp_path: Path) -> None:
        self.clock = ThreadedManualClock()
        self.path = tmp_path / "queues.db"
        # a short busy timeout keeps the locked-database test quick; nobody in another
        # process shares a manual clock, so polling for their commits can be rare
        self.backend = SQLiteQueueBackend(self.path, clock=self.clock, busy_timeout=0.2, poll_interval=1.0)

    def make_queue(self, name: str, config: QueueConfig | None = None) -> Queue:
        return self.backend.queue(name, config or QueueConfig())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def process_opener(self, name: str, config: QueueConfig | None = None) -> Callable[[], Queue]:
        path, config = self.path, config or QueueConfig()
        return lambda: SQLiteQueueBackend(path).queue(name, config)

    @contextlib.contextmanager
    def unavailable(self) -> Iterator[None]:
        """Another connection holds the write lock for the whole block."""
        locker = sqlite3.connect(self.path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()

    def close(self) -> None:
        self.backend.close()


class MemoryQueueEnv:
    """The in-process backend, on a manual clock."""

    name = "memory"
    real_time = False
    #: one process only: there is no file or server another process could open
    process_opener = None
    #: memory is always reachable
    unavailable = None

    def __init__(self) -> None:
        self.clock = ThreadedManualClock()
        self.backend = MemoryQueueBackend(clock=self.clock)

    def make_queue(self, name: str, config: QueueConfig | None = None) -> Queue:
        return self.backend.queue(name, config or QueueConfig())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def close(self) -> None:
        self.backend.close()


QUEUE_BACKENDS = ["memory", "sqlite", "sqs"]


@pytest.fixture(params=QUEUE_BACKENDS)
def queue_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Each queue backend in turn: memory, SQLite, SQS on moto."""
    env: object
    if request.param == "memory":
        env = MemoryQueueEnv()
    elif request.param == "sqlite":
        env = SQLiteQueueEnv(tmp_path)
    elif request.param == "sqs":
        from tests.aws_backends.moto_envs import SQSQueueEnv

        # moto: SQS over HTTP on loopback (tests/aws_backends/moto_envs.py)
        gap = request.node.get_closest_marker("moto_gap")
        if gap is not None:
            pytest.skip(f"moto falls short of SQS here: {gap.args[0]}")
        env = SQSQueueEnv(request.getfixturevalue("moto_endpoint"))
    else:  # pragma: no cover - other backends register here
        raise NotImplementedError(request.param)
    if env.real_time and request.node.get_closest_marker("needs_clock"):  # type: ignore[attr-defined]
        env.close()  # type: ignore[attr-defined]
        pytest.skip(f"the {env.name} backend runs on real time: this test needs to move the clock far")  # type: ignore[attr-defined]
    yield env
    env.close()  # type: ignore[attr-defined]
