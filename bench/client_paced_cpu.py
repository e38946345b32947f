"""CPU per event of the client paced at 4,000 events/s onto the embedded queue (a probe, not in run_all).

    python bench/client_paced_cpu.py [SECONDS]

Where the soak's producer CPU goes at a paced rate: the client's threads write a
batch of about ten events per SQLite transaction. Prints the process's CPU time per
event over the run (the pacing loop's own sleeps included, the same in every run).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from cv_analytics.client import AnalyticsClient
from cv_analytics.wiring import Settings, open_queue

RATE = 4_000


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    settings = Settings.from_env({"CV_ANALYTICS_DATA_DIR": tempfile.mkdtemp(prefix="paced-")})
    client = AnalyticsClient(lambda: open_queue(settings), spool_dir=settings.spool_dir)
    events = int(RATE * seconds)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(0, events, 2):
        target = start + i / RATE
        while time.perf_counter() < target:
            time.sleep(0.0005)
        cid = client.log_query(f"question {i}", session_id=f"s{i % 97}")
        client.log_response(cid, "answer", session_id=f"s{i % 97}", total_time=100)
    client.flush(60)
    cpu = time.process_time() - cpu_start
    stats = client.stats()
    client.close()
    print(f"{events} events at {RATE}/s: {cpu / events * 1e6:.1f} µs CPU per event "
          f"(spooled {stats.spooled}, sent {stats.sent}; load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
