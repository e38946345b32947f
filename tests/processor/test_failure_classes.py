"""Permanent failures leave on their first receive, transient ones are retried: on SQLite and on SQS (moto).

Every good event is recorded and nothing that could have succeeded is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cv_analytics.clock import ManualClock, SystemClock
from cv_analytics.exceptions import StoreUnavailableError
from cv_analytics.processor import Worker
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE, RECEIVE_COUNT_ATTRIBUTE, Queue, QueueConfig
from cv_analytics.queues.sqlite import SQLiteQueueBackend
from cv_analytics.stores.models import InteractionStatus
from cv_analytics.stores.sqlite import SQLiteStore

from .helpers import deep, poison, q, r


@pytest.fixture(params=["sqlite", "sqs"])
def env(request, tmp_path) -> Iterator[tuple[Queue, SQLiteStore, object]]:
    """(queue, store, clock): the SQLite queue on a manual clock, or SQS on moto on real time."""
    if request.param == "sqlite":
        clock = ManualClock()
        queue = SQLiteQueueBackend(tmp_path / "queues.db", clock=clock).queue("analytics", QueueConfig())
        yield queue, SQLiteStore(tmp_path / "store.db", clock=clock), clock
        return
    from tests.aws_backends.moto_envs import SQSQueueEnv

    sqs = SQSQueueEnv(request.getfixturevalue("moto_endpoint"))
    try:
        yield sqs.make_queue("classes.fifo", QueueConfig()), SQLiteStore(tmp_path / "store.db"), SystemClock()
    finally:
        sqs.close()


def _store_down_for(store: SQLiteStore, monkeypatch, calls: int) -> None:
    real, seen = store.record_events, {"n": 0}

    def flaky(events):
        seen["n"] += 1
        if seen["n"] <= calls:
            raise StoreUnavailableError("store is locked; retry later")
        return real(events)

    monkeypatch.setattr(store, "record_events", flaky)


def _dead_letters(queue: Queue) -> list:
    dlq = queue.dead_letter_queue
    assert dlq is not None
    return dlq.receive(10)


def test_a_poison_message_and_a_store_outage_in_one_session_lose_no_good_event(env, monkeypatch):
    queue, store, clock = env
    queue.send_batch([q("a1"), poison("s1"), r("a1"), q("a2"), r("a2"), q("b1", "s2"), r("b1", "s2")])
    _store_down_for(store, monkeypatch, calls=1)

    worker = Worker(queue, store, clock=clock, wait_seconds=0, max_backoff_seconds=1.0)
    stats = worker.run(drain=True)

    for cid in ("a1", "a2", "b1"):
        assert store.get_interaction(cid).status is InteractionStatus.ANSWERED, cid
    (dead,) = _dead_letters(queue)
    assert dead.body == poison("s1").body
    assert dead.attributes[RECEIVE_COUNT_ATTRIBUTE] == "1", "dead-lettered on its first receive"
    assert "correlationId" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
    assert stats.dead_lettered == 1
    # the outage released the six good messages once: each group's head as failed, the rest as held behind it
    assert (stats.failed, stats.skipped, stats.messages) == (2, 4, 7 + 6)
    assert queue.attributes().visible == queue.attributes().in_flight == 0


def test_a_5000_deep_body_among_200_good_messages_is_dead_lettered_alone_on_its_first_receive(env):
    queue, store, clock = env
    good = [m for i in range(100) for m in (q(f"c{i}", f"s{i % 3}"), r(f"c{i}", f"s{i % 3}"))]
    messages = [*good[:101], deep("s1"), *good[101:]]
    for start in range(0, len(messages), 10):
        queue.send_batch(messages[start : start + 10])

    stats = Worker(queue, store, clock=clock, wait_seconds=0).run(drain=True)

    assert store.counts().interactions[InteractionStatus.ANSWERED] == 100
    (dead,) = _dead_letters(queue)
    assert dead.body == deep("s1").body
    assert dead.attributes[RECEIVE_COUNT_ATTRIBUTE] == "1"
    assert "deep" in dead.attributes[FAILURE_REASON_ATTRIBUTE].lower()
    assert stats.dead_lettered == 1 and stats.failed == 0
