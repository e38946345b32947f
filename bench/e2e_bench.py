"""End-to-end embedded throughput: client → SQLite queue → processor → SQLite store.

The producer (this process) logs query/response pairs through the real
AnalyticsClient; a worker process (`cv-analytics worker`), started and ready
beforehand as the service it is, consumes them. The clock runs from the first
log call until the last interaction is in the store.
CPU seconds are counted per process over the same span (the producer's with
``time.process_time``, the worker's from the kernel via psutil), so a run on a
machine that other work shares still says what the pipeline itself cost; the
load average before the run is printed beside it.
Beside it, in the same run: raw SQLite batched inserts of the same bodies (10 per
transaction, the floor any SQLite queue pays), and persist-queue's
SQLiteAckQueue put/get/ack of the same bodies.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import machine, table, write_result  # noqa: E402

from cv_analytics.client import AnalyticsClient  # noqa: E402
from cv_analytics.wiring import Settings, open_queue, open_store  # noqa: E402
from cv_analytics.events import QueryEvent, ResponseEvent, to_json  # noqa: E402

PAIRS = int(os.environ.get("BENCH_PAIRS", "50000"))
BASE_TS = 1_763_164_800_000


def _pairs(n: int) -> list[tuple[str, str]]:
    return [(str(uuid.UUID(int=i + 1)), f"session-{i // 4}") for i in range(n)]


@dataclass
class PipelineRun:
    seconds: float
    producer_cpu: float
    worker_cpu: float


def _wait_until_ready(process: psutil.Process, data_dir: pathlib.Path, timeout: float = 60.0) -> None:
    """Until the worker has its database open: imported, configured, about to poll (a running service)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(pathlib.Path(f.path).is_relative_to(data_dir) for f in process.open_files()):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the worker did not open its database within {timeout:.0f} s")


def run_pipeline(tmp: pathlib.Path, pairs: list[tuple[str, str]]) -> PipelineRun:
    env = {**os.environ, "CV_ANALYTICS_DATA_DIR": str(tmp)}
    settings = Settings.from_env(env)
    store = open_store(settings)
    open_queue(settings)  # create the queue before the worker starts polling
    worker = subprocess.Popen(
        [sys.executable, "-m", "cv_analytics", "worker", "--wait", "1"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        worker_process = psutil.Process(worker.pid)
        _wait_until_ready(worker_process, tmp)
        worker_cpu_before = sum(worker_process.cpu_times()[:2])  # its start-up is not the pipeline's cost
        # The loop below logs ~650,000 events/s, faster than the sender spills response
        # events to disk: with the default bound (50,000) a burst of 100,000 would drop
        # part of itself (counted; by design, memory stays bounded). A throughput run
        # must lose nothing, so the buffer here holds the whole burst; the events still
        # go through the spool (spill_threshold is the default's).
        client = AnalyticsClient(
            lambda: open_queue(settings), spool_dir=tmp / "spool", max_buffer=max(50_000, 2 * len(pairs))
        )
        started, cpu_started = time.perf_counter(), time.process_time()
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
        lost = client.stats()
        if lost.dropped or lost.failed or lost.invalid:
            raise RuntimeError(f"the client did not send every event, the run proves nothing: {lost}")
        while store.counts().total_interactions < len(pairs):
            if time.perf_counter() - started > 900:
                raise RuntimeError("pipeline did not finish within 15 minutes")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        producer_cpu = time.process_time() - cpu_started
        worker_cpu = sum(worker_process.cpu_times()[:2]) - worker_cpu_before
        client.close(timeout=10)
        return PipelineRun(elapsed, producer_cpu, worker_cpu)
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


def run_raw_inserts(tmp: pathlib.Path, bodies: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds)"""
    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(bodies), 10):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events (body) VALUES (?)", [(b,) for b in bodies[start : start + 10]])
        conn.execute("COMMIT")
    return time.perf_counter() - started, time.process_time() - cpu_started


def run_persist_queue(tmp: pathlib.Path, bodies: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds)"""
    from persistqueue import SQLiteAckQueue

    queue = SQLiteAckQueue(str(tmp / "persist-queue"), multithreading=True, auto_commit=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    for body in bodies:
        queue.put(body)
    for _ in bodies:
        item = queue.get(block=False)
        queue.ack(item)
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> None:
    pairs = _pairs(PAIRS)
    bodies = _bodies(pairs)
    events = 2 * PAIRS
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        run = run_pipeline(pathlib.Path(d), pairs)
    rows = [
        [
            "cv-analytics: client → SQLite FIFO queue → worker → store (correlated)",
            f"{events:,}",
            f"{run.seconds:.2f}",
            f"{events / run.seconds:,.0f}",
            f"{run.producer_cpu:.2f} + {run.worker_cpu:.2f} (producer + worker)",
            f"{events / max(run.producer_cpu, run.worker_cpu):,.0f}",
        ]
    ]
    peer_rate = None
    if not os.environ.get("BENCH_PIPELINE_ONLY"):
        with tempfile.TemporaryDirectory() as d:
            wall, cpu = run_raw_inserts(pathlib.Path(d), bodies)
        rows.append(
            ["raw SQLite inserts, 10 per transaction (no queue semantics)", f"{events:,}", f"{wall:.2f}",
             f"{events / wall:,.0f}", f"{cpu:.2f}", f"{events / cpu:,.0f}"]
        )  # fmt: skip
        peer_events = min(events, int(os.environ.get("BENCH_PERSIST_QUEUE_EVENTS", "20000")))
        with tempfile.TemporaryDirectory() as d:
            wall, cpu = run_persist_queue(pathlib.Path(d), bodies[:peer_events])
        peer_rate = peer_events / wall
        rows.append(
            ["persist-queue SQLiteAckQueue put/get/ack (defaults, queue only)", f"{peer_events:,}", f"{wall:.2f}",
             f"{peer_rate:,.0f}", f"{cpu:.2f}", f"{peer_events / cpu:,.0f}"]
        )  # fmt: skip
    rate = events / run.seconds
    goals = [["at least 20,000 events/s end to end", f"{rate:,.0f}", "yes" if rate >= 20_000 else "no"]]
    if peer_rate is not None:
        goals.append(
            ["at least 5× persist-queue", f"{rate / peer_rate:.1f}×", "yes" if rate >= 5 * peer_rate else "no"]
        )
    markdown = (
        f"End-to-end embedded throughput, {PAIRS:,} query/response pairs ({machine()}; "
        f"load average {load[0]:.2f} / {load[1]:.2f} before the run: the two cores are shared with other work).\n\n"
        + table(["pipeline", "events", "seconds", "events/s", "CPU s", "events per CPU-s (busiest process)"], rows)
        + "\n\nThe producer logs every event in a tight loop (as a burst: it goes through the client's disk "
        "spool), with the client's buffer bound raised to the burst's size so that nothing is dropped; then the "
        "client replays the spool to the queue while the worker consumes it. CPU s counts every thread of a "
        "process (the producer: the caller, the client's sender and I/O threads, the WAL checkpointer). The "
        "events-per-CPU-second column is the rate if each process had a core of its own.\n\n"
        "## Goals\n\n"
        + table(["goal", "measured", "met"], goals)
    )
    write_result("e2e_bench", markdown)


if __name__ == "__main__":
    main()
