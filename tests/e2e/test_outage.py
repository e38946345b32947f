"""The queue goes away during traffic and comes back: nothing is lost, the chatbot never waits."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest

from .conftest import exported

from cv_analytics.client import AnalyticsClient
from cv_analytics.wiring import Settings, open_queue, open_store
from cv_analytics.processor import Worker
from cv_analytics.stores.models import InteractionStatus

from .conftest import exported


def _log_pairs(client: AnalyticsClient, start: int, n: int) -> None:
    for i in range(start, start + n):
        cid = client.log_query(f"Kubernetes question {i}", session_id=f"s{i % 13}", timestamp=1_763_164_800_000 + i)
        client.log_response(cid, "yes", session_id=f"s{i % 13}", total_time=120, match_quality=0.9, sources_used=["Kubernetes"])


@pytest.mark.slow
def test_queue_locked_during_traffic_then_back_loses_nothing(tmp_path):
    settings = Settings.from_env({"CV_ANALYTICS_DATA_DIR": str(tmp_path)})
    open_queue(settings)  # create the database before locking it
    client = AnalyticsClient(lambda: open_queue(settings), spool_dir=settings.spool_dir, backoff_base=0.05, backoff_max=0.2)
    _log_pairs(client, 0, 300)
    assert client.flush(timeout=30)

    locker = sqlite3.connect(settings.data_dir / "queues.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # the queue is unreachable for writers from now on
    try:
        _log_pairs(client, 300, 700)  # every call returns: the chatbot is never held up
        deadline = time.monotonic() + 60
        while client.stats().spooled == 0 and client.stats().retries == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = client.stats()
        assert stats.spooled > 0 or stats.retries > 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert client.flush(timeout=60)
    client.close(timeout=10)
    assert client.stats().dropped == 0

    store = open_store(settings)
    Worker(open_queue(settings), store, wait_seconds=0).run(drain=True)
    counts = store.counts()
    assert counts.interactions[InteractionStatus.ANSWERED] == 1_000
    assert counts.pending_queries == counts.pending_responses == 0


@pytest.mark.slow
def test_worker_drain_sweeps_orphans_before_it_returns(cli, cli_env, tmp_path):
    """A drain that returns long before the first periodic sweep still closes queries past the timeout."""
    _record_a_lone_query_then_outlive_its_timeout(cli, cli_env, tmp_path, "lonely-1", 1_763_164_800_000)

    cli("worker", "--drain")  # nothing to receive: returns at once, after sweeping

    rows = [json.loads(line) for line in cli("export").stdout.splitlines() if line.strip()]
    assert [(row["correlationId"], row["status"]) for row in rows] == [("lonely-1", "unanswered")]


def test_report_counts_queries_past_the_orphan_timeout_as_unanswered_without_a_worker_sweep(cli, cli_env, tmp_path):
    """Issue 7, item 8: the report closes lone queries itself, so the gaps it exists to show are in it."""
    _record_a_lone_query_then_outlive_its_timeout(cli, cli_env, tmp_path, "lonely-2", 1_763_380_800_000)
    # no worker runs now: only the report can close it

    report = json.loads(cli("report", "--week", "2025-W47", "--format", "json").stdout)
    assert report["volume"]["unanswered"] == 1


def _record_a_lone_query_then_outlive_its_timeout(cli, cli_env, tmp_path, cid: str, timestamp: int) -> None:
    """A query the worker records as pending (younger than the one-second orphan timeout), then 1.5 s pass."""
    lonely = tmp_path / "lonely.json"
    lonely.write_text(
        json.dumps({"eventType": "query", "correlationId": cid, "timestamp": timestamp,
                     "sessionId": "s1", "query": "Do you know Rust?"})
    )  # fmt: skip
    cli_env["CV_ANALYTICS_ORPHAN_TIMEOUT"] = "1"
    cli("send", str(lonely))
    cli("worker", "--drain")  # recorded as pending: not yet past the one-second timeout
    assert exported(cli) == []
    time.sleep(1.5)


@pytest.mark.slow
def test_a_worker_started_while_the_queue_database_is_locked_waits_for_it(cli, cli_env, tmp_path):
    """Issue 12, scenario 2: the alarm check opened every queue at start-up, creating the jobs queues
    nobody had used yet; that needs the write lock, and a locked database ended the worker with an error."""
    query = tmp_path / "query.json"
    query.write_text(
        json.dumps({"eventType": "query", "correlationId": "locked-1", "timestamp": 1_763_164_800_000,
                     "sessionId": "s1", "query": "Do you know Rust?"})
    )  # fmt: skip
    cli("send", str(query))  # the analytics queue only
    locker = sqlite3.connect(tmp_path / "data" / "queues.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    stderr = tmp_path / "worker.err"
    try:
        with open(stderr, "wb") as err:
            worker = subprocess.Popen([sys.executable, "-m", "cv_analytics", "worker", "--drain", "--wait", "0"],
                                      env=cli_env, stderr=err)  # fmt: skip
        deadline = time.monotonic() + 60
        while b"consumer of analytics paused" not in stderr.read_bytes() and worker.poll() is None:
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.05)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert worker.wait(60) == 0, stderr.read_text()
    status = json.loads(cli("status", "--json").stdout)
    assert status["store"]["pendingQueries"] == 1
