"""The embedded backends' write lock: a waiting writer gets in between another's transactions."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from cv_analytics._sqlite import SQLiteConnections


def test_a_waiting_writer_gets_the_lock_between_another_writers_back_to_back_transactions(tmp_path):
    # A busy writer (a worker draining the queue, a client replaying its spool):
    # ~2 ms transactions with a short gap of Python work between them. SQLite's own
    # busy handler sleeps 1, 2, 5 … 100 ms between tries and tends to sleep
    # through every gap; the embedded backends try again every half millisecond.
    path = tmp_path / "lock.db"
    busy = SQLiteConnections(path)
    with busy.transaction() as conn:
        conn.execute("CREATE TABLE t (x)")
    waiter = SQLiteConnections(path, busy_timeout=30.0)
    got_in = threading.Event()
    transactions_before = []

    def busy_writer() -> None:
        done = 0
        while not got_in.is_set() and done < 2000:
            with busy.transaction() as conn:
                conn.execute("INSERT INTO t VALUES (1)")
                time.sleep(0.002)
            done += 1
            time.sleep(0.0002)
        transactions_before.append(done)

    thread = threading.Thread(target=busy_writer)
    with busy.transaction():  # the waiter starts while the lock is held
        thread.start()
        blocked = threading.Thread(target=lambda: _write_once(waiter, got_in))
        blocked.start()
        time.sleep(0.01)
    blocked.join(timeout=60)
    thread.join(timeout=60)

    assert got_in.is_set()
    assert transactions_before[0] < 200  # well before the busy writer stopped by itself


def _write_once(connections: SQLiteConnections, done: threading.Event) -> None:
    with connections.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    done.set()


def test_a_writer_gives_up_after_its_busy_timeout_with_sqlites_locked_error(tmp_path):
    path = tmp_path / "lock.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    writer = SQLiteConnections(path, busy_timeout=0.2)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"), writer.transaction():
            pass
        # the connection's own busy timeout is back in force for its other statements
        assert writer.get().execute("PRAGMA busy_timeout").fetchone()[0] == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        writer.close()
