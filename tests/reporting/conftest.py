"""Fixtures of the report tests: a SQLite store holding the fixed data set, an SMTP server on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.stores.sqlite import SQLiteStore

from . import dataset


@pytest.fixture
def store(tmp_path, clock: ManualClock) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "store.db", clock=clock)
    yield s
    s.close()


@pytest.fixture
def loaded_store(store: SQLiteStore, clock: ManualClock) -> SQLiteStore:
    dataset.load(store, clock)
    return store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
