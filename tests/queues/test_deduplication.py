"""Deduplication: ids per event, a five-minute window that outlives the first copy."""

from __future__ import annotations

import json
import uuid

import pytest

from cv_analytics.queues.base import OutgoingMessage, QueueConfig

from .helpers import bodies, drain, send

WINDOW = 300.0


@pytest.mark.moto_gap("moto returns a new message id for a deduplicated send, where SQS (and the seam) return the first copy's")
def test_duplicate_within_the_window_returns_the_first_id_and_is_stored_once(queue_env):
    q = queue_env.make_queue("events.fifo")

    first = send(q, "hello", dedup="d1")
    again = send(q, "hello (resent by a retry)", dedup="d1")

    assert again == first
    assert bodies(drain(q)) == ["hello"]


@pytest.mark.moto_gap("moto returns a new message id for a deduplicated send, where SQS (and the seam) return the first copy's")
def test_duplicates_inside_one_batch_are_stored_once(queue_env):
    q = queue_env.make_queue("events.fifo")

    outcomes = q.send_batch(
        [OutgoingMessage("one", "g", "d1"), OutgoingMessage("two", "g", "d2"), OutgoingMessage("one", "g", "d1")]
    )

    assert all(o.ok for o in outcomes)
    assert outcomes[2].message_id == outcomes[0].message_id != outcomes[1].message_id
    assert bodies(drain(q)) == ["one", "two"]


@pytest.mark.moto_gap("moto forgets a deduplication id once its message is deleted")
def test_duplicate_after_the_first_copy_was_deleted_is_still_dropped(queue_env):
    # SQS keeps the deduplication id for the whole window, deleted or not (moto forgets it)
    q = queue_env.make_queue("events.fifo")
    first = send(q, "hello", dedup="d1")
    (message,) = q.receive(10)
    q.delete(message.receipt_handle)

    assert send(q, "hello", dedup="d1") == first
    assert q.receive(10) == []
    assert q.attributes().visible == 0


@pytest.mark.needs_clock
def test_same_deduplication_id_after_the_window_is_a_new_message(queue_env):
    q = queue_env.make_queue("events.fifo")
    first = send(q, "hello", dedup="d1")
    drain(q)

    queue_env.advance(WINDOW + 1)
    second = send(q, "hello again", dedup="d1")

    assert second != first
    assert bodies(drain(q)) == ["hello again"]


@pytest.mark.needs_clock
def test_window_runs_from_the_first_send_and_duplicates_do_not_extend_it(queue_env):
    q = queue_env.make_queue("events.fifo")
    first = send(q, "v1", dedup="d1")
    queue_env.advance(WINDOW - 60)
    assert send(q, "v1 retried", dedup="d1") == first

    queue_env.advance(61)

    assert send(q, "v2", dedup="d1") != first
    assert bodies(drain(q)) == ["v1", "v2"]


@pytest.mark.moto_gap("moto returns a new message id for a deduplicated send, where SQS (and the seam) return the first copy's")
def test_content_based_deduplication_drops_identical_bodies(queue_env):
    q = queue_env.make_queue("content.fifo", QueueConfig(content_based_dedup=True))

    a = q.send("same body", group_id="g")
    b = q.send("same body", group_id="g")
    c = q.send("another body", group_id="g")

    assert a == b != c
    assert bodies(drain(q)) == ["same body", "another body"]


def test_fifo_queue_without_content_deduplication_refuses_a_message_without_an_id(queue_env):
    q = queue_env.make_queue("events.fifo")

    (outcome,) = q.send_batch([OutgoingMessage("no dedup id", "g")])

    assert not outcome.ok and outcome.sender_fault
    assert outcome.error_code == "InvalidParameterValue"


def test_query_and_response_sharing_a_correlation_id_are_both_delivered(queue_env):
    # DESIGN.md: the dedup id is per event (<correlationId>:<eventType>); deduplicating
    # on the bare correlation id would silently drop the response
    q = queue_env.make_queue("analytics.fifo")
    cid, session = str(uuid.uuid4()), "session-1"
    query = json.dumps({"eventType": "query", "correlationId": cid, "timestamp": 1, "query": "Python?"})
    response = json.dumps({"eventType": "response", "correlationId": cid, "timestamp": 2, "response": "Yes"})

    q.send(query, group_id=session, dedup_id=f"{cid}:query")
    q.send(response, group_id=session, dedup_id=f"{cid}:response")

    received = drain(q)
    assert [json.loads(m.body)["eventType"] for m in received] == ["query", "response"]
    assert [m.dedup_id for m in received] == [f"{cid}:query", f"{cid}:response"]


def test_deduplication_ids_are_scoped_to_their_queue(queue_env):
    one = queue_env.make_queue("one.fifo")
    two = queue_env.make_queue("two.fifo")

    send(one, "hello", dedup="d1")
    send(two, "hello", dedup="d1")

    assert bodies(drain(one)) == ["hello"]
    assert bodies(drain(two)) == ["hello"]
