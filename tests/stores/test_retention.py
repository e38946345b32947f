"""Retention on every backend: prune removes what is past the retention and keeps the rest; SQLite gives the space back."""

from __future__ import annotations

import json

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.events import QueryEvent, ResponseEvent
from cv_analytics.ops.retention import DAY_MS, prune_store
from cv_analytics.stores.base import Store
from cv_analytics.stores.sqlite import SQLiteStore

NOW_MS = 1_796_083_200_000  # 2026-12-01


def _pair(store: Store, cid: str, ts: int, text: str = "Python?") -> None:
    store.record_events(
        [
            QueryEvent(correlation_id=cid, timestamp=ts, session_id="s", query=text),
            ResponseEvent(correlation_id=cid, timestamp=ts + 100, session_id="s", response="yes"),
        ]
    )


def test_prune_removes_interactions_past_the_retention_and_keeps_the_year_before(store: Store, clock: ManualClock):
    clock.set(NOW_MS / 1000)
    _pair(store, "ancient", NOW_MS - 500 * DAY_MS)
    _pair(store, "just-past", NOW_MS - 400 * DAY_MS - 60_000)
    _pair(store, "last-year", NOW_MS - 364 * DAY_MS)  # the same week a year ago: kept for year-on-year
    _pair(store, "today", NOW_MS - 3_600_000)
    store.record_events([QueryEvent(correlation_id="waiting", timestamp=NOW_MS - 1000, session_id="s", query="?")])

    result = prune_store(store, clock=clock, retention_days=400)

    assert result.interactions == 2
    assert {i.correlation_id for i in store.iter_interactions()} == {"last-year", "today"}
    assert store.get_pending("waiting")  # a pending event within its TTL stays
    assert prune_store(store, clock=clock, retention_days=400).interactions == 0
    with pytest.raises(ValueError):
        prune_store(store, clock=clock, retention_days=0)


def test_sqlite_prune_deletes_derived_rows_and_returns_the_space(tmp_path, clock: ManualClock):
    clock.set(NOW_MS / 1000)
    store = SQLiteStore(tmp_path / "store.db", clock=clock)
    conn = store.connection()
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # a new file: incremental vacuum
    for i in range(3000):
        _pair(store, f"old-{i}", NOW_MS - 450 * DAY_MS + i, text="Kubernetes and Python? " + "x" * 400)
    _pair(store, "recent", NOW_MS - DAY_MS)
    assert conn.execute("SELECT count(*) FROM interaction_terms_pending").fetchone()[0] == 3001  # the report's queue
    pages_before = conn.execute("PRAGMA page_count").fetchone()[0]

    assert prune_store(store, clock=clock, retention_days=400).interactions == 3000

    assert conn.execute("SELECT count(*) FROM interaction_terms_pending").fetchone()[0] == 1
    assert conn.execute("PRAGMA page_count").fetchone()[0] < pages_before / 4
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0


def test_an_old_file_without_incremental_vacuum_is_rebuilt_once(tmp_path, clock: ManualClock):
    import sqlite3

    path = tmp_path / "old.db"
    legacy = sqlite3.connect(path)
    legacy.execute("CREATE TABLE leftover (x)")  # a file made before incremental vacuum: auto_vacuum NONE
    legacy.commit()
    legacy.close()
    store = SQLiteStore(path, clock=clock)
    assert store.connection().execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    store.compact()
    assert store.connection().execute("PRAGMA auto_vacuum").fetchone()[0] == 2


@pytest.mark.slow
def test_cli_prune_and_the_worker_drain_keeps_old_interactions(tmp_path):
    """``prune`` removes them; a ``worker --drain`` (which runs housekeeping once more) never prunes."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CV_ANALYTICS_")}
    env["CV_ANALYTICS_DATA_DIR"] = str(tmp_path / "data")
    events = tmp_path / "events.jsonl"
    old = 1_600_000_000_000  # 2020
    events.write_text(
        json.dumps({"eventType": "query", "correlationId": "c-old", "timestamp": old, "query": "q"}) + "\n"
        + json.dumps({"eventType": "response", "correlationId": "c-old", "timestamp": old + 5, "response": "r"}) + "\n"
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "cv_analytics", *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result

    cli("send", str(events))
    cli("worker", "--drain")
    assert len(cli("export").stdout.splitlines()) == 1
    pruned = json.loads(cli("prune", "--json").stdout)
    assert pruned["interactions"] == 1
    assert cli("export").stdout.strip() == ""
    assert "removed 0 expired pending event(s) and 0 interaction(s)" in cli("prune", "--retention-days", "10").stderr
