from __future__ import annotations

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.queues.base import Queue, QueueConfig
from cv_analytics.queues.memory import MemoryQueueBackend
from cv_analytics.queues.sqlite import SQLiteQueueBackend
from cv_analytics.stores.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "memory"])
def queue(request, tmp_path, clock: ManualClock) -> Queue:
    """The analytics queue on each embedded backend (the SQS ones run in test_failure_classes.py and tests/aws_e2e)."""
    config = QueueConfig(visibility_timeout=30)
    if request.param == "memory":
        return MemoryQueueBackend(clock=clock).queue("analytics", config)
    return SQLiteQueueBackend(tmp_path / "queues.db", clock=clock).queue("analytics", config)


@pytest.fixture
def store(tmp_path, clock: ManualClock) -> SQLiteStore:
    return SQLiteStore(tmp_path / "store.db", clock=clock)
