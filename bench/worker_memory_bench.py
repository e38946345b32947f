"""Peak memory of the worker while it drains a backlog: it must not grow with the backlog.

A backlog of events is put straight on the SQLite queue, then a worker process
drains it (`Worker.run(drain=True)`), printing its resident set size as it goes.
Two backlogs (100k and 1M events) show whether memory depends on backlog size.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import machine, table, write_result  # noqa: E402

from cv_analytics.wiring import Settings, open_queue  # noqa: E402
from cv_analytics.events import QueryEvent, ResponseEvent, to_json  # noqa: E402
from cv_analytics.queues.base import OutgoingMessage  # noqa: E402

BACKLOGS = [int(x) for x in os.environ.get("BENCH_BACKLOGS", "100000,1000000").split(",")]

WORKER = textwrap.dedent(
    """
    import os, resource, sys, time
    from cv_analytics.wiring import Settings, open_queue, open_store
    from cv_analytics.processor import Worker

    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    settings = Settings.from_env()
    worker = Worker(open_queue(settings), open_store(settings), wait_seconds=0.0)
    marks = []
    def on_batch(result):
        if worker.stats.messages % 100_000 < 10:
            marks.append((worker.stats.messages, rss_mb()))
    started = time.perf_counter()
    worker.run(drain=True, on_batch=on_batch)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT {worker.stats.messages} {elapsed:.2f} {peak:.1f} " + ";".join(f"{n}:{m:.1f}" for n, m in marks))
    """
)


def fill(settings: Settings, events: int) -> None:
    queue = open_queue(settings)
    batch: list[OutgoingMessage] = []
    for i in range(events // 2):
        cid = f"c-{i:09d}"
        for event in (
            QueryEvent(correlation_id=cid, timestamp=1_763_164_800_000 + i, session_id=f"s-{i // 3}", query="Kubernetes in production?"),
            ResponseEvent.model_validate(
                {"correlationId": cid, "timestamp": 1_763_164_800_200 + i, "sessionId": f"s-{i // 3}", "response": "Yes, three years.",
                 "performance": {"totalTime": 200, "llmTime": 150, "retrievalTime": 50, "cacheHit": False},
                 "metadata": {"matchQuality": 0.9, "sourcesUsed": ["Kubernetes"]}}
            ),
        ):
            batch.append(OutgoingMessage(to_json(event), group_id=event.group_id, dedup_id=event.dedup_id))
            if len(batch) == 10:
                queue.send_batch(batch)
                batch = []
    if batch:
        queue.send_batch(batch)


def main() -> None:
    rows = []
    for backlog in BACKLOGS:
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, "CV_ANALYTICS_DATA_DIR": d}
            settings = Settings.from_env(env)
            started = time.perf_counter()
            fill(settings, backlog)
            fill_seconds = time.perf_counter() - started
            out = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, check=True)
            line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
            _, messages, seconds, peak, marks = (line.split(" ", 4) + [""])[:5]
            samples = [m.split(":") for m in marks.split(";") if m]
            trace = ", ".join(f"{int(n) // 1000}k: {float(mb):.0f}" for n, mb in samples[:: max(1, len(samples) // 5)])
            rows.append([f"{backlog:,}", f"{fill_seconds:.1f}", f"{int(messages):,}", seconds, f"{float(peak):.0f}", trace])
    markdown = (
        f"Worker memory while draining a backlog ({machine()}).\n\n"
        + table(["backlog (events)", "enqueue s", "drained", "drain s", "peak RSS MB", "RSS MB at messages processed"], rows)
    )
    write_result("worker_memory_bench", markdown)


if __name__ == "__main__":
    main()
