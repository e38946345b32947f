"""The client against the real embedded queue, across threads, forks and processes.

Faults here are real ones: an outage is another connection holding SQLite's
write lock, a crash is SIGKILL, an exit is the interpreter's own.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict

import pytest

from cv_analytics.client import AnalyticsClient
from cv_analytics.queues.base import Queue
from cv_analytics.queues.sqlite import SQLiteQueueBackend

from .doubles import segments, wait_until

TESTS_DIR = pathlib.Path(__file__).resolve().parents[1]
SRC_DIR = TESTS_DIR.parent / "src"


def drain(queue: Queue) -> list:
    """Every message in the queue (received and deleted), in delivery order."""
    out = []
    while batch := queue.receive(10, visibility_timeout=60):
        out.extend(batch)
        queue.delete_batch([m.receipt_handle for m in batch])
    return out


def by_session(messages: list) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for m in messages:
        body = json.loads(m.body)
        groups[body.get("sessionId") or body["correlationId"]].append(body["query"])
    return dict(groups)


@pytest.fixture
def db(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "queues.db"


def open_queue(db: pathlib.Path, **options: float) -> Queue:
    return SQLiteQueueBackend(db, **options).queue("analytics")


def test_events_reach_the_sqlite_queue_with_dedup_and_group_ids(db, spool_dir):
    client = AnalyticsClient(lambda: open_queue(db), spool_dir=spool_dir, flush_interval=0.05)
    cid = client.log_query("Kubernetes?", session_id="s-1")
    client.log_response(cid, "Two years in production.", session_id="s-1", total_time=120, match_quality=0.7)
    legacy = client.log_query("Go?")  # no session: grouped by its correlation id
    assert client.close(timeout=10)

    messages = drain(open_queue(db))
    assert sorted((m.dedup_id, m.group_id) for m in messages) == sorted(
        [(f"{cid}:query", "s-1"), (f"{cid}:response", "s-1"), (f"{legacy}:query", legacy)]
    )


def test_a_locked_database_is_an_outage_the_spool_rides_out_in_order(db, spool_dir):
    open_queue(db)  # create the schema before taking the lock
    client = AnalyticsClient(lambda: open_queue(db, busy_timeout=0.05), spool_dir=spool_dir, flush_interval=0.05)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # every writer now gets "database is locked"
    try:
        for i in range(40):
            client.log_query(str(i), session_id=f"s{i % 2}")
        assert client.flush(timeout=0.3) is False
        assert wait_until(lambda: client.stats().spooled >= 40 and client.stats().buffered == 0)
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert client.flush(timeout=20)
    assert by_session(drain(open_queue(db))) == {
        "s0": [str(i) for i in range(0, 40, 2)],
        "s1": [str(i) for i in range(1, 40, 2)],
    }
    assert client.stats().sent == 40 and segments(spool_dir) == []
    client.close(timeout=5)


@pytest.mark.slow
def test_a_burst_three_times_the_buffer_reaches_the_sqlite_queue_in_full(db, spool_dir):
    client = AnalyticsClient(lambda: open_queue(db), spool_dir=spool_dir, max_buffer=20_000)
    total = 60_000
    for i in range(total):
        client.log_query(str(i), session_id=f"s{i % 8}")
    assert client.close(timeout=300)
    stats = client.stats()
    assert (stats.dropped, stats.sent) == (0, total)
    assert stats.spooled > 0
    assert open_queue(db).attributes().visible == total


@pytest.mark.slow
def test_a_forked_child_sends_its_own_events_and_not_the_parents_buffer(db, spool_dir, tmp_path):
    parent_pid = os.getpid()
    gate, entered = threading.Event(), threading.Event()

    def factory() -> Queue:
        queue = open_queue(db)
        if os.getpid() == parent_pid:  # in the parent, sends hang until the gate opens
            send = queue.send_many  # what the client's I/O thread calls

            def gated(messages):
                entered.set()
                gate.wait()
                return send(messages)

            queue.send_many = gated  # type: ignore[method-assign]
        return queue

    client = AnalyticsClient(factory, spool_dir=spool_dir, flush_interval=0.05)
    client.log_query("p0", session_id="parent")
    assert entered.wait(10)
    for i in range(1, 15):
        client.log_query(f"p{i}", session_id="parent")
    assert client.stats().buffered == 14

    report = tmp_path / "child.json"
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            buffered_at_fork = client.stats().buffered
            for i in range(7):
                client.log_query(f"c{i}", session_id="child")
            flushed = client.flush(timeout=30)
            stats = client.stats()
            report.write_text(json.dumps({"buffered_at_fork": buffered_at_fork, "flushed": flushed, "sent": stats.sent}))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert json.loads(report.read_text()) == {"buffered_at_fork": 0, "flushed": True, "sent": 7}

    gate.set()
    assert client.flush(timeout=20)
    assert client.stats().sent == 15
    assert by_session(drain(open_queue(db))) == {
        "parent": [f"p{i}" for i in range(15)],
        "child": [f"c{i}" for i in range(7)],
    }
    client.close(timeout=5)


def _run_script(body: str, *args: str, **popen: object) -> subprocess.Popen:
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path[:0] = [{str(SRC_DIR)!r}, {str(TESTS_DIR)!r}]
        from cv_analytics.client import AnalyticsClient
        from cv_analytics.queues.sqlite import SQLiteQueueBackend
        from client.doubles import MemoryQueue
        """
    ) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, **popen)


@pytest.mark.slow
def test_a_spool_left_by_a_killed_process_is_replayed_by_the_next_client(db, spool_dir):
    proc = _run_script(
        """
        down = MemoryQueue()
        down.down = True
        client = AnalyticsClient(down, spool_dir=sys.argv[1], flush_interval=0.05)
        for i in range(50):
            client.log_query(str(i), session_id="s")
        while client.stats().spooled < 50:
            time.sleep(0.01)
        print("spooled", flush=True)
        time.sleep(600)
        """,
        str(spool_dir),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "spooled"
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: no atexit, no close, locks released by the kernel
        proc.wait(30)
    assert segments(spool_dir)

    client = AnalyticsClient(lambda: open_queue(db), spool_dir=spool_dir, flush_interval=0.05)
    assert client.flush(timeout=20)
    assert by_session(drain(open_queue(db))) == {"s": [str(i) for i in range(50)]}
    assert segments(spool_dir) == []
    client.close(timeout=5)


@pytest.mark.slow
def test_at_exit_the_client_drains_to_the_queue_without_an_explicit_close(db, spool_dir):
    proc = _run_script(
        """
        client = AnalyticsClient(lambda: SQLiteQueueBackend(sys.argv[1]).queue("analytics"), spool_dir=sys.argv[2])
        for i in range(30):
            client.log_query(str(i), session_id="s")
        """,
        str(db),
        str(spool_dir),
    )
    assert proc.wait(60) == 0
    assert by_session(drain(open_queue(db))) == {"s": [str(i) for i in range(30)]}


@pytest.mark.slow
def test_at_exit_with_the_queue_down_the_client_spools_for_the_next_one(db, spool_dir):
    proc = _run_script(
        """
        down = MemoryQueue()
        down.down = True
        client = AnalyticsClient(down, spool_dir=sys.argv[1], shutdown_timeout=2.0)
        for i in range(30):
            client.log_query(str(i), session_id="s")
        """,
        str(spool_dir),
    )
    assert proc.wait(60) == 0
    assert segments(spool_dir)
    client = AnalyticsClient(lambda: open_queue(db), spool_dir=spool_dir, flush_interval=0.05)
    assert client.flush(timeout=20)
    assert by_session(drain(open_queue(db))) == {"s": [str(i) for i in range(30)]}
    client.close(timeout=5)
