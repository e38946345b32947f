"""Fixtures of the client tests (the queue doubles live in ``doubles.py``)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import pytest

from cv_analytics.client import AnalyticsClient
from cv_analytics.clock import ManualClock

from .doubles import MemoryQueue


@pytest.fixture
def queue() -> Iterator[MemoryQueue]:
    q = MemoryQueue()
    yield q
    if q.gate is not None:
        q.gate.set()  # let a sender thread stuck in this queue finish


@pytest.fixture
def spool_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "spool"


@pytest.fixture
def make_client(queue: MemoryQueue, spool_dir: pathlib.Path, clock: ManualClock) -> Iterator[Callable[..., AnalyticsClient]]:
    """Build clients on the test's queue, spool directory and manual clock; closed at teardown."""
    made: list[AnalyticsClient] = []

    def make(target: object = None, **options: object) -> AnalyticsClient:
        options.setdefault("spool_dir", spool_dir)
        options.setdefault("clock", clock)
        options.setdefault("flush_interval", 0.05)
        client = AnalyticsClient(queue if target is None else target, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    if queue.gate is not None:
        queue.gate.set()
    queue.down = False
    for client in made:
        client.close(timeout=2.0)
