"""What a log call costs the caller's thread, and what survives: cv-analytics vs PostHog vs Segment.

    .venv/bin/python bench/client_bench.py [--paced N] [--burst N]

For each library, on the caller's thread, ``time.perf_counter_ns()`` around
every call:

* cv-analytics ``AnalyticsClient.log_query`` into the embedded SQLite queue in
  a temporary directory (default settings);
* posthog-python ``Posthog.capture`` and Segment's ``Client.track``, pointed at
  a loopback HTTP sink started here (threaded ``http.server`` on 127.0.0.1,
  200 for every POST, ``TCP_NODELAY`` on accepted sockets), default settings.

Two scenarios: *paced* (5,000 calls/s, the caller sleeping between calls, as a
busy web worker would) and *burst* (a tight loop). After each run the client
is closed (ours: ``close()``, whose leftovers in the spool are replayed by a
second client; peers: ``flush()`` + ``shutdown()``/``join()``), then what
reached the destination is counted: messages in the SQLite queue for us,
events the sink received for the peers.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import logging
import pathlib
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import machine, percentile, table, write_result  # noqa: E402

from cv_analytics.client import AnalyticsClient  # noqa: E402
from cv_analytics.queues.sqlite import SQLiteQueueBackend  # noqa: E402

PACED_RATE = 5_000
QUERY = "What is your experience with TypeScript?"
SESSION = "session-bench"


# -- the loopback sink the peers send to -------------------------------------------


class _Sink(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.events = 0
        self.lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, object]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' sessions expect
    server: _Sink

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        try:
            batch = json.loads(body).get("batch", [])
        except ValueError:
            batch = []
        with self.server.lock:
            self.server.events += len(batch)
        reply = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


# -- one measured run ---------------------------------------------------------------


@dataclass
class Run:
    library: str
    scenario: str
    calls: int
    latencies_ns: list[int]
    elapsed_s: float
    arrived: int
    drain_s: float

    def p(self, q: float) -> float:
        return percentile(self.latencies_ns, q) / 1000

    @property
    def dropped(self) -> int:
        return self.calls - self.arrived


def measure(call: Callable[[int], object], calls: int, paced: bool) -> tuple[list[int], float]:
    latencies = [0] * calls
    clock = time.perf_counter_ns
    interval = 1_000_000_000 // PACED_RATE
    started = clock()
    next_at = started
    for i in range(calls):
        if paced:
            next_at += interval
            wait = next_at - clock()
            if wait > 0:
                time.sleep(wait / 1e9)
        t0 = clock()
        call(i)
        latencies[i] = clock() - t0
    return latencies, (clock() - started) / 1e9


def run_ours(scenario: str, calls: int, workdir: pathlib.Path) -> Run:
    db = workdir / f"ours-{scenario}.db"
    spool = workdir / f"spool-{scenario}"

    def open_queue():
        return SQLiteQueueBackend(db).queue("analytics")

    client = AnalyticsClient(open_queue, spool_dir=spool)
    latencies, elapsed = measure(lambda i: client.log_query(QUERY, session_id=f"{SESSION}-{i % 50}"), calls, scenario == "paced")
    started = time.perf_counter()
    if not client.close(timeout=600):
        # what close left in the spool, replayed by the next client as after a restart
        successor = AnalyticsClient(open_queue, spool_dir=spool)
        successor.flush(timeout=600)
        successor.close(timeout=60)
    drain = time.perf_counter() - started
    arrived = open_queue().attributes().visible
    return Run("cv-analytics log_query", scenario, calls, latencies, elapsed, arrived, drain)


def run_posthog(scenario: str, calls: int, sink: _Sink) -> Run:
    from posthog import Posthog

    before = sink.events
    client = Posthog("phc_bench", host=sink.url, disable_geoip=True, enable_exception_autocapture=False)
    latencies, elapsed = measure(
        lambda i: client.capture("cv_query", distinct_id=f"{SESSION}-{i % 50}", properties={"query": QUERY}),
        calls,
        scenario == "paced",
    )
    started = time.perf_counter()
    client.flush(timeout_seconds=600)
    client.shutdown()
    drain = time.perf_counter() - started
    return Run("posthog capture", scenario, calls, latencies, elapsed, sink.events - before, drain)


def run_segment(scenario: str, calls: int, sink: _Sink) -> Run:
    from segment.analytics import Client

    before = sink.events
    client = Client("bench-write-key", host=sink.url)
    latencies, elapsed = measure(
        lambda i: client.track(f"{SESSION}-{i % 50}", "cv_query", {"query": QUERY}), calls, scenario == "paced"
    )
    started = time.perf_counter()
    client.flush()
    client.join()
    drain = time.perf_counter() - started
    return Run("segment track", scenario, calls, latencies, elapsed, sink.events - before, drain)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paced", type=int, default=20_000, help="calls in the paced scenario (5,000/s)")
    parser.add_argument("--burst", type=int, default=200_000, help="calls in the tight-loop scenario")
    args = parser.parse_args()
    # The SDKs log every dropped event (and set their loggers' levels themselves);
    # the table counts them once.
    logging.disable(logging.CRITICAL)

    sink = _Sink()
    threading.Thread(target=sink.serve_forever, name="bench-sink", daemon=True).start()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        for scenario, calls in (("paced", args.paced), ("burst", args.burst)):
            for runner in (
                lambda s, n: run_ours(s, n, workdir),
                lambda s, n: run_posthog(s, n, sink),
                lambda s, n: run_segment(s, n, sink),
            ):
                gc.collect()
                run = runner(scenario, calls)
                runs.append(run)
                print(
                    f"  {run.library:24} {scenario:5}: p50 {run.p(50):7.1f} µs  p99 {run.p(99):7.1f} µs  "
                    f"arrived {run.arrived}/{run.calls}  (drain {run.drain_s:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    sink.shutdown()

    rows = [
        [
            r.library,
            f"{r.scenario} ({r.calls:,} calls{', 5,000/s' if r.scenario == 'paced' else ''})",
            f"{r.p(50):.1f}",
            f"{r.p(99):.1f}",
            f"{r.p(99.9):.1f}",
            f"{r.arrived:,}",
            f"{r.dropped:,} ({100 * r.dropped / r.calls:.1f} %)",
            f"{r.calls / r.elapsed_s:,.0f}",
            f"{r.drain_s:.1f}",
        ]
        for r in runs
    ]
    ours = {r.scenario: r for r in runs if r.library.startswith("cv-analytics")}
    peers_paced = [r for r in runs if r.scenario == "paced" and not r.library.startswith("cv-analytics")]
    best_peer = min(peers_paced, key=lambda r: r.p(99))
    goals = [
        ("paced p50 under 10 µs", f"{ours['paced'].p(50):.1f} µs", ours["paced"].p(50) < 10),
        (
            f"paced p99 at most half the better peer's ({best_peer.library}: {best_peer.p(99):.1f} µs)",
            f"{ours['paced'].p(99):.1f} µs",
            ours["paced"].p(99) <= best_peer.p(99) / 2,
        ),
        ("burst: every event arrives", f"{ours['burst'].arrived:,} of {ours['burst'].calls:,}", ours["burst"].dropped == 0),
        (
            "burst p99 within 2× the paced p99",
            f"{ours['burst'].p(99):.1f} µs vs {ours['paced'].p(99):.1f} µs",
            ours["burst"].p(99) <= 2 * ours["paced"].p(99),
        ),
    ]
    markdown = "\n\n".join(
        [
            "# Client benchmark: cost on the caller's thread, and events kept",
            f"Machine: {machine()} (shared with other work; figures are one run). "
            "Latency is `perf_counter_ns` around each call on the caller's thread. "
            "cv-analytics sends to the embedded SQLite queue; PostHog and Segment to a loopback HTTP sink, "
            "all with default settings (PostHog and Segment buffer at most 10,000 events).",
            table(
                ["library", "scenario", "p50 µs", "p99 µs", "p99.9 µs", "arrived", "dropped", "calls/s", "drain s"],
                rows,
            ),
            "Arrived: messages in the SQLite queue (after `close()`, and a replay of whatever it left in the "
            "spool) for cv-analytics; events the sink received after `flush()` and shutdown for the peers. "
            "Drain: seconds from the end of the calls until then.",
            "## Goals",
            table(["goal", "measured", "met"], [[g, m, "yes" if ok else "**no**"] for g, m, ok in goals]),
        ]
    )
    write_result("client_bench", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
