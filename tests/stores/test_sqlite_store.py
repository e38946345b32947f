"""What is particular to the SQLite store: schema versions, errors, several processes."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from cv_analytics.exceptions import SchemaVersionError, StoreUnavailableError
from cv_analytics.events import QueryEvent, ResponseEvent
from cv_analytics.stores.sqlite import SCHEMA_VERSION, SQLiteStore


def test_new_database_is_at_the_latest_schema_version(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    assert store.schema_version == SCHEMA_VERSION
    SQLiteStore(tmp_path / "s.db")  # reopening migrates nothing and fails nothing


def test_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError, match="Upgrade cv-analytics"):
        SQLiteStore(path)


def test_locked_database_raises_store_unavailable(tmp_path):
    path = tmp_path / "s.db"
    store = SQLiteStore(path, busy_timeout=0.05)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailableError, match="retry later"):
            store.record_events([QueryEvent(correlation_id="x", timestamp=1, query="q")])
    finally:
        locker.execute("ROLLBACK")
    store.record_events([QueryEvent(correlation_id="x", timestamp=1, query="q")])
    assert store.counts().pending_queries == 1


def _record(path: str, kind: str, n: int, barrier) -> None:
    store = SQLiteStore(path)
    barrier.wait()
    for i in range(n):
        if kind == "query":
            store.record_events([QueryEvent(correlation_id=f"c{i}", timestamp=1_763_164_800_000, query="q")])
        else:
            store.record_events([ResponseEvent(correlation_id=f"c{i}", timestamp=1_763_164_800_001, response="r")])


@pytest.mark.slow
def test_two_processes_recording_both_halves_at_once_correlate_every_pair(tmp_path):
    path = str(tmp_path / "s.db")
    SQLiteStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_record, args=(path, kind, 300, barrier)) for kind in ("query", "response")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    counts = SQLiteStore(path).counts()
    assert counts.total_interactions == 300
    assert counts.pending_queries == counts.pending_responses == 0
