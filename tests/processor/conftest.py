from __future__ import annotations

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.queues.base import Queue, QueueConfig
from cv_analytics.queues.sqlite import SQLiteQueueBackend
from cv_analytics.stores.sqlite import SQLiteStore


@pytest.fixture
def queue(tmp_path, clock: ManualClock) -> Queue:
    return SQLiteQueueBackend(tmp_path / "queues.db", clock=clock).queue("analytics", QueueConfig(visibility_timeout=30))


@pytest.fixture
def store(tmp_path, clock: ManualClock) -> SQLiteStore:
    return SQLiteStore(tmp_path / "store.db", clock=clock)
