"""Scenario 6: the disk spool reaches its bound during an outage.

The queue's database is locked by another process while the client logs at a steady rate with a small
spool (``CV_ANALYTICS_SPOOL_MAX_BYTES``). Events beyond the bound are dropped one by one: counted, shown
by ``cv-analytics status`` (text and JSON) and raised as the ``events-dropped`` alarm, never an
exception or a wait in the caller. After the lock is released exactly the kept events arrive.

What "kept" means: the client drops events individually, so a pair may lose one side. The store must
then hold every event logged and not dropped exactly once: both sides of a pair as one answered
interaction, a lone side as a pending query or response, and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

import pytest

from cv_analytics.events import EventType
from cv_analytics.ops.alarm_state import SQLiteAlarmStates
from cv_analytics.ops.alarms import AlarmKind, AlarmState
from cv_analytics.stores.models import InteractionStatus
from cv_analytics.wiring import Settings, open_queue, open_store
from cv_analytics.wiring.client import open_client

from .harness import (
    CALLER_P99_BOUND_MS,
    CallTimes,
    CliProcess,
    Survived,
    WriteLocker,
    contract_traffic,
    log_steadily,
    record_survived,
    tally_interactions,
    wait_until,
)

LOCK_SECONDS = 6
RATE = 2_000
#: about 2,000 of the contract's events: a small fraction of what the outage brings
SPOOL_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Held:
    """What the store holds of the logged events, counted event by event."""

    answered_pairs: int
    lone_queries: int
    lone_responses: int
    #: correlation ids stored twice, stored in another state, or that nobody logged
    wrong: list[str]

    @property
    def events(self) -> int:
        return 2 * self.answered_pairs + self.lone_queries + self.lone_responses


def held_events(store, logged_ids: set[str]) -> Held:
    answered: set[str] = set()
    wrong: list[str] = []
    for interaction in store.iter_interactions():
        cid = interaction.correlation_id
        if cid in answered or cid not in logged_ids or interaction.status is not InteractionStatus.ANSWERED:
            wrong.append(cid)
        answered.add(cid)
    sides: Counter[EventType] = Counter()
    for cid in logged_ids:
        pending = store.get_pending(cid)
        sides.update(pending.keys())
        if pending and cid in answered:
            wrong.append(cid)  # correlated and still pending: one event counted twice
    return Held(len(answered), sides[EventType.QUERY], sides[EventType.RESPONSE], wrong)


def stored_events(store) -> int:
    """The same total from the store's counts (cheap enough to poll)."""
    counts = store.counts()
    return 2 * counts.total_interactions + counts.pending_queries + counts.pending_responses


@pytest.mark.slow
def test_spool_at_its_bound_drops_are_counted_shown_by_status_and_exactly_the_kept_events_arrive(data_dir, env, logs):
    env = {**env, "CV_ANALYTICS_SPOOL_MAX_BYTES": str(SPOOL_MAX_BYTES)}
    settings = Settings.from_env(env)
    open_queue(settings)
    traffic = contract_traffic((LOCK_SECONDS + 4) * RATE // 2, seed=6, prefix="bound-")
    worker = CliProcess({**env, "CV_ANALYTICS_ALARM_INTERVAL": "1"}, "worker", "--wait", "1", log_dir=logs)
    client = open_client(settings)
    times = CallTimes()
    try:
        locker = WriteLocker(data_dir / "queues.db", LOCK_SECONDS, log_dir=logs)
        locker.wait_locked()
        logged = log_steadily(client.log, traffic.events, 0, rate=RATE, times=times, until=locker.released)
        held_lock = locker.held_seconds()
        flushed = client.flush(timeout=180)
        dropped = client.stats().dropped
        kept = logged - dropped

        store = open_store(settings)
        waited = ""
        try:
            wait_until(lambda: stored_events(store) >= kept, 180, what=f"the {kept:,} kept events stored")
            wait_until(lambda: _dropped_alarm(data_dir) is AlarmState.ALARM, 120, what="the worker's check to raise events-dropped")
        except AssertionError as exc:  # recorded below, then failed with what was seen
            waited = f"{exc}: {client.stats()}, store {store.counts()}, alarm {_dropped_alarm(data_dir)}"
        client.close(timeout=10)
        as_json = json.loads(_cli(env, "status", "--json").stdout)
        as_text = _cli(env, "status").stdout
        held = held_events(store, {event["correlationId"] for event in traffic.events[:logged]})
        tally = tally_interactions(store, [i.correlation_id for i in store.iter_interactions()])
        worker_alive = worker.alive()
    finally:
        client.close(timeout=10)
        worker.terminate()

    stats = client.stats()
    record_survived(
        Survived(
            "6. disk spool at its bound",
            f"queues.db locked by another process (BEGIN EXCLUSIVE) for {held_lock:.0f} s, spool bound {SPOOL_MAX_BYTES // 1024} KiB",
            f"{logged:,} events at {RATE:,}/s, 10 % responses first",
            lost=max(0, kept - held.events),
            duplicated=tally.duplicated + len(held.wrong),
            notes=(
                f"{dropped:,} dropped (counted, in status and the events-dropped alarm), {kept:,} kept and stored: "
                f"{held.answered_pairs:,} answered pairs, {held.lone_queries} lone queries, "
                f"{held.lone_responses} lone responses; {times.summary()}"
            ),
        )
    )
    assert not waited, f"{waited}\nworker:\n{worker.stderr()[-3000:]}"
    assert dropped > 0 and stats.spooled > 0 and flushed, stats
    assert as_json["spool"]["dropped"] == dropped and as_json["spool"]["lastDrop"], as_json["spool"]
    assert f"spool: {dropped} event(s) dropped by clients, the last at {as_json['spool']['lastDrop']}" in as_text, as_text
    assert any(a["kind"] == "events-dropped" and a["state"] == "ALARM" for a in as_json["alarms"]), as_json["alarms"]
    assert worker_alive, worker.stderr()[-3000:]
    assert times.percentile_ms(0.99) <= CALLER_P99_BOUND_MS, times.summary()
    assert (held.events, held.wrong[:5], tally.duplicated) == (kept, [], 0), (held, tally)


def _dropped_alarm(data_dir) -> AlarmState | None:
    rows = SQLiteAlarmStates(data_dir / "alarms.db").rows()
    return next((row.state for row in rows if row.kind is AlarmKind.EVENTS_DROPPED), None)


def _cli(env, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "cv_analytics", *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result
