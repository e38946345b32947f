"""Scenario 1: the analytics worker killed with SIGKILL ten times while a producer logs 100,000 events.

The producer is the real client in this process, logging at a steady rate to the embedded queue while the
worker runs; each kill lands at a random point of the stream (a count of interactions stored, reproducible
from the seed in the row) in a worker that has stored something since it started, and a new worker starts at
once. A short visibility timeout brings the killed worker's messages back quickly. At the end a drain, then
every interaction must be stored once, answered, nothing pending, nothing dead-lettered.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from cv_analytics.wiring import Settings, open_store
from cv_analytics.wiring.client import open_client

from .harness import (
    CliProcess,
    Survived,
    assert_exactly_once,
    chunks,
    contract_traffic,
    random_moments,
    record_survived,
    tally_interactions,
    wait_until,
)

PAIRS = 50_000
KILLS = 10
SEED = 12
#: events per second the producer logs: the stream lasts about seventeen seconds
RATE = 6_000
SLICE = 250


def _produce(client, events, stop: threading.Event) -> None:
    """Log ``events`` at :data:`RATE` per second, a slice at a time, as a busy assistant would."""
    started = time.monotonic()
    for index, piece in enumerate(chunks(events, SLICE)):
        if stop.is_set():
            return
        delay = started + index * SLICE / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for event in piece:
            client.log(event)


@pytest.mark.slow
def test_worker_killed_ten_times_mid_stream_stores_every_interaction_once(data_dir, env, logs):
    env = {**env, "CV_ANALYTICS_VISIBILITY_TIMEOUT": "2"}
    settings = Settings.from_env(env)
    traffic = contract_traffic(PAIRS, seed=SEED, prefix="kill9-")
    store = open_store(settings)
    client = open_client(settings)
    # the random moments are points of the stream (interactions stored), not of the clock: on a loaded
    # machine the worker's start-up takes longer, and a kill must still land mid-stream
    moments = [int(share * PAIRS) for share in random_moments(KILLS, low=0.02, high=0.95, seed=SEED)]

    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(client, traffic.events, stop), name="producer", daemon=True)
    stored_at_kills: list[int] = []
    worker = CliProcess(env, "worker", log_dir=logs)
    started = time.monotonic()
    producer.start()
    try:
        for moment in moments:
            stored_at_start = store.counts().total_interactions
            # the kill interrupts a worker at work, not one still importing
            wait_until(
                lambda: store.counts().total_interactions >= max(moment, stored_at_start + 1),
                120,
                what=f"the worker to store {moment:,} interactions",
                interval=0.05,
            )
            worker.kill()
            stored_at_kills.append(store.counts().total_interactions)
            worker = CliProcess(env, "worker", log_dir=logs)
        producer.join(300)
        assert not producer.is_alive(), "the producer did not finish"
        assert client.flush(60), "the client did not hand every event to the queue"
        client.close()
        # a worker restarted a moment ago may still be importing, before its SIGTERM handler: then the
        # default action ends it, with nothing in hand
        assert worker.terminate() in (0, -signal.SIGTERM), worker.stderr()[-3000:]
        drain = CliProcess(env, "worker", "--drain", log_dir=logs, name="drain")
        assert drain.wait(300) == 0, drain.stderr()[-3000:]
    finally:
        stop.set()
        client.close(1)
        worker.kill()
    wall = time.monotonic() - started

    status_run = CliProcess(env, "status", "--json", log_dir=logs)
    assert status_run.wait(60) == 0, status_run.stderr()
    status = json.loads(status_run.stdout())
    dead_lettered = sum(q["visible"] + q["inFlight"] for q in status["queues"] if q["name"].endswith("dlq"))
    tally = tally_interactions(store, traffic.correlation_ids)
    counts = store.counts()
    stats = client.stats()
    record_survived(
        Survived(
            "1. analytics worker kill -9",
            f"SIGKILL ×{KILLS} at random moments of the stream (seed {SEED}), restarted each time; visibility timeout 2 s",
            f"{len(traffic):,} events ({PAIRS:,} interactions, 10 % responses first, 97 sessions interleaved) "
            f"logged at {RATE:,}/s by the client",
            lost=tally.lost,
            duplicated=tally.duplicated,
            notes=f"stored at the kills: {', '.join(f'{n:,}' for n in stored_at_kills)}; "
            f"DLQ {dead_lettered}; wall {wall:.0f} s",
        )
    )
    assert 0 < stored_at_kills[0] and stored_at_kills[-1] < PAIRS, f"the kills must land mid-stream: {stored_at_kills}"
    assert (stats.dropped, stats.invalid, stats.failed) == (0, 0, 0), stats
    assert_exactly_once(tally, "interactions after ten kills of the worker")
    assert counts.pending_queries == counts.pending_responses == 0, counts
    assert status["store"]["pendingQueries"] == status["store"]["pendingResponses"] == 0
    assert dead_lettered == 0, status["queues"]
    assert all(q["visible"] == q["inFlight"] == 0 for q in status["queues"]), status["queues"]
