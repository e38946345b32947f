"""End-to-end embedded throughput: client → SQLite queue → processor → SQLite store.

The producer (this process) logs query/response pairs through the real
AnalyticsClient; a worker process (`cv-analytics worker`) consumes them. The
clock runs from the first log call until the last interaction is in the store.
Beside it, in the same run: raw SQLite batched inserts of the same bodies (10 per
transaction, the floor any SQLite queue pays), and persist-queue's
SQLiteAckQueue put/get/ack of the same bodies.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import machine, table, write_result  # noqa: E402

from cv_analytics.client import AnalyticsClient  # noqa: E402
from cv_analytics.config import Settings, open_queue, open_store  # noqa: E402
from cv_analytics.events import QueryEvent, ResponseEvent, to_json  # noqa: E402

PAIRS = int(os.environ.get("BENCH_PAIRS", "50000"))
BASE_TS = 1_763_164_800_000


def _pairs(n: int) -> list[tuple[str, str]]:
    return [(str(uuid.UUID(int=i + 1)), f"session-{i // 4}") for i in range(n)]


def run_pipeline(tmp: pathlib.Path, pairs: list[tuple[str, str]]) -> float:
    env = {**os.environ, "CV_ANALYTICS_DATA_DIR": str(tmp)}
    settings = Settings.from_env(env)
    store = open_store(settings)
    open_queue(settings)  # create the queue before the worker starts polling
    worker = subprocess.Popen(
        [sys.executable, "-m", "cv_analytics.cli", "worker", "--wait", "1"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        client = AnalyticsClient(lambda: open_queue(settings), spool_dir=tmp / "spool")
        started = time.perf_counter()
        for i, (cid, session) in enumerate(pairs):
            ts = BASE_TS + i
            client.log_query("What is your experience with TypeScript?", session_id=session, correlation_id=cid, timestamp=ts)
            client.log_response(
                cid,
                "Seven years, mostly Node.js.",
                session_id=session,
                timestamp=ts + 230,
                total_time=230,
                llm_time=180,
                retrieval_time=50,
                cache_hit=False,
                match_quality=0.93,
                sources_used=["TypeScript", "Node.js"],
            )
        client.flush(timeout=600)
        while store.counts().total_interactions < len(pairs):
            if time.perf_counter() - started > 900:
                raise RuntimeError("pipeline did not finish within 15 minutes")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        client.close(timeout=10)
        return elapsed
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def _bodies(pairs: list[tuple[str, str]]) -> list[str]:
    bodies = []
    for i, (cid, session) in enumerate(pairs):
        bodies.append(to_json(QueryEvent(correlation_id=cid, timestamp=BASE_TS + i, session_id=session, query="What is your experience with TypeScript?")))
        bodies.append(
            to_json(
                ResponseEvent.model_validate(
                    {"correlationId": cid, "timestamp": BASE_TS + i + 230, "sessionId": session, "response": "Seven years, mostly Node.js.",
                     "performance": {"totalTime": 230, "llmTime": 180, "retrievalTime": 50, "cacheHit": False},
                     "metadata": {"matchQuality": 0.93, "sourcesUsed": ["TypeScript", "Node.js"]}}
                )
            )
        )
    return bodies


def run_raw_inserts(tmp: pathlib.Path, bodies: list[str]) -> float:
    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    started = time.perf_counter()
    for start in range(0, len(bodies), 10):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events (body) VALUES (?)", [(b,) for b in bodies[start : start + 10]])
        conn.execute("COMMIT")
    return time.perf_counter() - started


def run_persist_queue(tmp: pathlib.Path, bodies: list[str]) -> float:
    from persistqueue import SQLiteAckQueue

    queue = SQLiteAckQueue(str(tmp / "persist-queue"), multithreading=True, auto_commit=True)
    started = time.perf_counter()
    for body in bodies:
        queue.put(body)
    for _ in bodies:
        item = queue.get(block=False)
        queue.ack(item)
    return time.perf_counter() - started


def main() -> None:
    pairs = _pairs(PAIRS)
    bodies = _bodies(pairs)
    events = 2 * PAIRS
    rows = []
    with tempfile.TemporaryDirectory() as d:
        elapsed = run_pipeline(pathlib.Path(d), pairs)
        rows.append(["cv-analytics: client → SQLite FIFO queue → worker → store (correlated)", events, f"{elapsed:.2f}", f"{events / elapsed:,.0f}"])
    with tempfile.TemporaryDirectory() as d:
        elapsed = run_raw_inserts(pathlib.Path(d), bodies)
        rows.append(["raw SQLite inserts, 10 per transaction (no queue semantics)", events, f"{elapsed:.2f}", f"{events / elapsed:,.0f}"])
    peer_events = min(events, int(os.environ.get("BENCH_PERSIST_QUEUE_EVENTS", "20000")))
    with tempfile.TemporaryDirectory() as d:
        elapsed = run_persist_queue(pathlib.Path(d), bodies[:peer_events])
        rows.append(["persist-queue SQLiteAckQueue put/get/ack (defaults, queue only)", peer_events, f"{elapsed:.2f}", f"{peer_events / elapsed:,.0f}"])
    markdown = (
        f"End-to-end embedded throughput, {PAIRS:,} query/response pairs ({machine()}).\n\n"
        + table(["pipeline", "events", "seconds", "events/s"], rows)
    )
    write_result("e2e_bench", markdown)


if __name__ == "__main__":
    main()
