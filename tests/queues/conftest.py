"""One behavioural suite for every queue backend: the embedded one, and SQS on moto.

A backend joins by adding a param to ``queue_env`` and an environment class with
the same surface as :class:`SQLiteQueueEnv`:

``make_queue(name, config)``
    a fresh queue (FIFO names end in ``.fifo``, as SQS requires);
``advance(seconds)``
    let time pass: the manual clock moves, a real-time backend sleeps; tests keep
    it to a couple of seconds, and those that must travel further (the 5-minute
    deduplication window, 4-day retention) are marked ``needs_clock`` and skipped
    where time is real;
``process_opener(name, config)``
    a callable that opens the same queue in a forked worker process, on the real clock;
``unavailable()``
    a context manager during which the queue cannot be reached.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.queues.base import Queue, QueueConfig
from cv_analytics.queues.sqlite import SQLiteQueueBackend
from tests.aws_backends.moto_envs import SQSQueueEnv


class SQLiteQueueEnv:
    """The embedded backend on a temporary file, on a manual clock."""

    name = "sqlite"
    #: time is faked here: advance() is instant and tests may travel days
    real_time = False

    def __init__(self, tmp_path: Path) -> None:
        self.clock = ManualClock()
        self.path = tmp_path / "queues.db"
        # a short busy timeout keeps the locked-database test quick
        self.backend = SQLiteQueueBackend(self.path, clock=self.clock, busy_timeout=0.2)

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


@pytest.fixture(params=["sqlite", "sqs"])
def queue_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteQueueEnv | SQSQueueEnv]:
    env: SQLiteQueueEnv | SQSQueueEnv
    if request.param == "sqlite":
        env = SQLiteQueueEnv(tmp_path)
    elif request.param == "sqs":
        # moto: SQS over HTTP on loopback (tests/aws_backends/moto_envs.py)
        gap = request.node.get_closest_marker("moto_gap")
        if gap is not None:
            pytest.skip(f"moto falls short of SQS here: {gap.args[0]}")
        env = SQSQueueEnv(request.getfixturevalue("moto_endpoint"))
    else:  # pragma: no cover - other backends register here
        raise NotImplementedError(request.param)
    if env.real_time and request.node.get_closest_marker("needs_clock"):
        env.close()
        pytest.skip(f"the {env.name} backend runs on real time: this test needs to move the clock far")
    yield env
    env.close()
