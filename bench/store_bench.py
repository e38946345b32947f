"""The store alone: ``record_events`` on batches of 200 events, CPU µs per event.

    PYTHONPATH=src .venv/bin/python bench/store_bench.py            # 20,000 events per scenario
    PYTHONPATH=src .venv/bin/python bench/store_bench.py --events 4000

Two scenarios, as the worker meets them: a batch holding both halves of 100
pairs (the usual case: a session's query and response travel together), and
halves split across batches (200 queries, then their 200 responses). CPU time
(``time.process_time``) is the figure: wall time on shared cores is noise.
Backends: the embedded SQLite store, on a fresh file each run, and the
in-memory one (the cost of the correlation rules without storage).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _common import machine, table  # noqa: E402

from cv_analytics.events import QueryEvent, ResponseEvent  # noqa: E402
from cv_analytics.stores.base import Store  # noqa: E402
from cv_analytics.stores.sqlite import SQLiteStore  # noqa: E402

BATCH = 200
TS = 1_763_164_800_000


def pair(cid: str, n: int) -> tuple[QueryEvent, ResponseEvent]:
    q = QueryEvent(correlation_id=cid, timestamp=TS + n, session_id=f"s-{n % 50}", query="Does she know Python and AWS?")
    r = ResponseEvent.model_validate(
        {
            "correlationId": cid,
            "timestamp": TS + n + 250,
            "sessionId": f"s-{n % 50}",
            "response": "Yes: eight years of Python, and Lambda, SQS and DynamoDB in production.",
            "performance": {"totalTime": 250, "llmTime": 200, "retrievalTime": 50, "cacheHit": False},
            "metadata": {"matchQuality": 0.8, "sourcesUsed": ["Python", "AWS"]},
        }
    )
    return q, r


def batches_together(n_events: int) -> list[list[QueryEvent | ResponseEvent]]:
    pairs = [pair(str(uuid.uuid4()), n) for n in range(n_events // 2)]
    flat = [e for p in pairs for e in p]
    return [flat[i : i + BATCH] for i in range(0, len(flat), BATCH)]


def batches_split(n_events: int) -> list[list[QueryEvent | ResponseEvent]]:
    pairs = [pair(str(uuid.uuid4()), n) for n in range(n_events // 2)]
    out: list[list[QueryEvent | ResponseEvent]] = []
    for i in range(0, len(pairs), BATCH):
        chunk = pairs[i : i + BATCH]
        out += [[q for q, _ in chunk], [r for _, r in chunk]]
    return out


def measure(make_store: Callable[[], Store], batches: list[list[QueryEvent | ResponseEvent]]) -> tuple[float, float]:
    """CPU µs and wall µs per event over all batches."""
    store = make_store()
    try:
        store.record_events(batches[0])  # warm up: connection, schema, first statements
        events = sum(len(b) for b in batches[1:])
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in batches[1:]:
            store.record_events(batch)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        store.close()
    return cpu / events * 1e6, wall / events * 1e6


def backends(tmp: pathlib.Path) -> dict[str, Callable[[], Store]]:
    counter = iter(range(1_000_000))
    found: dict[str, Callable[[], Store]] = {"sqlite": lambda: SQLiteStore(tmp / f"store-{next(counter)}.db")}
    try:
        from cv_analytics.stores.memory import MemoryStore
    except ImportError:  # before the in-memory store existed
        pass
    else:
        found["memory"] = MemoryStore
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per scenario (default 20,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; the best is reported")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in backends(pathlib.Path(tmp)).items():
            for scenario, build in (("pairs in one batch", batches_together), ("halves split", batches_split)):
                runs = [measure(make, build(args.events)) for _ in range(args.repeat)]
                cpu, wall = min(runs)
                rows.append([name, scenario, f"{cpu:.1f}", f"{wall:.1f}"])
    print(f"store record_events, batches of {BATCH}, {args.events:,} events, best of {args.repeat} ({machine()})\n")
    print(table(["backend", "scenario", "CPU µs/event", "wall µs/event"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
