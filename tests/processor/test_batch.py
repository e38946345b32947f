"""The processor's batch rules: partial failures, the FIFO rule, poison messages to the DLQ."""

from __future__ import annotations

import json

from cv_analytics.processor import Worker
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE, RECEIVE_COUNT_ATTRIBUTE, Queue
from cv_analytics.queues.batch import Status
from cv_analytics.stores.models import InteractionStatus

from .helpers import poison, process, process_and_settle, q, r


def _trip_on(store, monkeypatch, cid: str, exc: Exception) -> None:
    """The store raises ``exc`` whenever a batch holds ``cid``'s query (a bug no one foresaw)."""
    real = store.record_events

    def buggy(events):
        if any(e.correlation_id == cid and e.event_type.value == "query" for e in events):
            raise exc
        return real(events)

    monkeypatch.setattr(store, "record_events", buggy)


def test_a_retried_message_holds_the_rest_of_its_group_but_not_other_groups(queue: Queue, store, monkeypatch):
    _trip_on(store, monkeypatch, "a1", KeyError("a bug no one foresaw"))
    queue.send_batch([q("z0"), q("a1"), r("a1"), q("b1", "s2"), r("b1", "s2")])
    batch = queue.receive(10)
    result = process(store, batch)

    statuses = [i.status for i in result.items]
    assert statuses == [Status.SUCCEEDED, Status.TRANSIENT, Status.SKIPPED, Status.SUCCEEDED, Status.SUCCEEDED]
    assert "KeyError" in result.items[1].reason
    failed_ids = [f["itemIdentifier"] for f in result.lambda_response()["batchItemFailures"]]
    assert failed_ids == [batch[1].message_id, batch[2].message_id]
    assert store.get_interaction("b1").status is InteractionStatus.ANSWERED
    assert store.get_interaction("a1") is None  # its response waits behind the failed query


def test_a_poison_message_is_dead_lettered_on_its_first_receive_and_its_group_goes_on_in_the_same_batch(
    queue: Queue, store
):
    queue.send_batch([q("a1"), poison("s1"), r("a1")])
    batch = queue.receive(10)
    result = process_and_settle(queue, store, batch)

    assert [i.status for i in result.items] == [Status.SUCCEEDED, Status.DEAD_LETTERED, Status.SUCCEEDED]
    assert result.lambda_response() == {"batchItemFailures": []}
    assert store.get_interaction("a1").status is InteractionStatus.ANSWERED
    (dead,) = queue.dead_letter_queue.receive(10)
    assert "correlationId" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
    assert dead.attributes[RECEIVE_COUNT_ATTRIBUTE] == "1"


def test_poison_message_goes_to_the_dlq_with_its_reason_and_its_group_resumes(queue: Queue, store, clock):
    queue.send_batch([q("a1"), poison("s1"), r("a1")])
    worker = Worker(queue, store, clock=clock, wait_seconds=0)
    worker.run(drain=True)

    assert store.get_interaction("a1").status is InteractionStatus.ANSWERED
    assert worker.stats.dead_lettered == 1 and worker.stats.failed == 0 and worker.stats.batches == 1
    dlq = queue.dead_letter_queue
    assert dlq.attributes().visible == 1
    (dead,) = dlq.receive(10)
    assert dead.body == poison("s1").body
    assert "correlationId" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
    assert dead.attributes[RECEIVE_COUNT_ATTRIBUTE] == "1"
    assert queue.attributes().visible == queue.attributes().in_flight == 0


def test_not_json_goes_to_the_dlq_and_never_stops_the_worker(queue: Queue, store, clock):
    queue.send_batch([poison("s9", "this is not json"), q("x", "s3"), r("x", "s3")])
    Worker(queue, store, clock=clock, wait_seconds=0).run(drain=True)
    (dead,) = queue.dead_letter_queue.receive(10)
    assert "not valid JSON" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
    assert store.counts().total_interactions == 1


def test_redelivered_batch_after_a_crash_counts_each_interaction_once(queue: Queue, store, clock):
    queue.send_batch([q("a"), r("a"), q("b"), r("b")])
    first = queue.receive(10)
    process(store, first)  # recorded, then the worker "crashes" before deleting
    clock.advance(31)  # the visibility timeout passes
    again = queue.receive(10)
    assert [m.message_id for m in again] == [m.message_id for m in first]
    result = process(store, again)
    assert all(i.status is Status.SUCCEEDED for i in result.items)
    assert store.counts().total_interactions == 2


def test_store_outage_releases_the_batch_without_dead_lettering(queue: Queue, store, monkeypatch, clock):
    from cv_analytics.exceptions import StoreUnavailableError

    queue.send_batch([q("a"), r("a")])
    calls = {"n": 0}
    real = store.record_events

    def flaky(events):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise StoreUnavailableError("store is locked; retry later")
        return real(events)

    monkeypatch.setattr(store, "record_events", flaky)
    real_ping = store.ping
    checks = {"n": 0}

    def ping():
        checks["n"] += 1
        if checks["n"] <= 3:
            raise StoreUnavailableError("still locked")
        return real_ping()

    monkeypatch.setattr(store, "ping", ping)
    worker = Worker(queue, store, clock=clock, wait_seconds=0)
    worker.run(drain=True)
    assert store.get_interaction("a").status is InteractionStatus.ANSWERED
    assert queue.dead_letter_queue.attributes().visible == 0
    assert worker.stats.outages >= 1


def test_orphan_sweep_runs_from_the_worker(queue: Queue, store, clock):
    queue.send_batch([q("lonely")])
    worker = Worker(queue, store, clock=clock, wait_seconds=0, orphan_timeout_seconds=600, sweep_interval_seconds=60)
    worker.run(drain=True)
    assert store.get_interaction("lonely") is None
    clock.advance(700)
    worker.run_once(wait_seconds=0)
    assert store.get_interaction("lonely").status is InteractionStatus.UNANSWERED
    assert json.loads(json.dumps(store.get_interaction("lonely").to_export()))["status"] == "unanswered"


def test_a_drain_sweeps_before_it_returns_even_before_the_first_sweep_is_due(queue: Queue, store, clock):
    queue.send_batch([q("lonely")])
    worker = Worker(queue, store, clock=clock, wait_seconds=0, orphan_timeout_seconds=600, sweep_interval_seconds=3600)
    worker.run(drain=True)
    clock.advance(700)  # past the orphan timeout, long before the next periodic sweep

    worker.run(drain=True)  # the queue is empty: this drain returns at once, after sweeping

    assert store.get_interaction("lonely").status is InteractionStatus.UNANSWERED
    assert worker.stats.unanswered == 1


def test_an_unforeseen_error_on_one_event_dead_letters_only_that_message(queue: Queue, store, clock, monkeypatch):
    queue.send_batch([q("good", "s1"), q("trips", "s2"), r("trips", "s2"), r("good", "s1")])
    _trip_on(store, monkeypatch, "trips", KeyError("a bug no one foresaw"))
    worker = Worker(queue, store, clock=clock, wait_seconds=0)
    worker.run(drain=True)

    assert store.get_interaction("good").status is InteractionStatus.ANSWERED
    (dead,) = queue.dead_letter_queue.receive(10)
    assert "KeyError" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
    # retried until its last receive (it may be the store's bug, not the message's), then dead-lettered
    assert dead.attributes[RECEIVE_COUNT_ATTRIBUTE] == "3"
    # its group's response waited behind it (FIFO) and then went on alone
    assert store.get_pending("trips")


def test_a_stale_receipt_handle_does_not_stop_the_worker(queue: Queue, store, clock):
    queue.send_batch([poison("s1")])
    (first,) = queue.receive(10, visibility_timeout=1)
    clock.advance(2)
    (again,) = queue.receive(10)  # another worker took it after our timeout
    result = process_and_settle(queue, store, [first])
    assert result.items[0].status is Status.PERMANENT  # not moved: the other delivery owns it now
    assert result.lambda_response()["batchItemFailures"] == [{"itemIdentifier": first.message_id}]
    assert queue.dead_letter_queue.attributes().visible == 0
