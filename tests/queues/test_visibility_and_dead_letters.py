"""Visibility timeouts, receipt handles, the dead-letter queue and redrive."""

from __future__ import annotations

import pytest

from cv_analytics.exceptions import ReceiptHandleError
from cv_analytics.queues.base import (
    FAILURE_REASON_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    QueueConfig,
)

from .helpers import bodies, drain, send, send_many

#: one second of visibility: a real-time backend waits it out for real
SHORT = QueueConfig(visibility_timeout=1.0)


def test_received_message_is_invisible_until_its_visibility_timeout_ends(queue_env):
    q = queue_env.make_queue("jobs.fifo", SHORT)
    send(q, "job")
    (first,) = q.receive(10)

    assert q.receive(10) == []
    queue_env.advance(1.5)
    (again,) = q.receive(10)

    assert again.message_id == first.message_id
    assert again.receipt_handle != first.receipt_handle
    assert (first.receive_count, again.receive_count) == (1, 2)


def test_visibility_timeout_given_to_receive_overrides_the_queue_default(queue_env):
    q = queue_env.make_queue("jobs.fifo", QueueConfig(visibility_timeout=600.0))
    send(q, "job")
    q.receive(10, visibility_timeout=1.0)

    queue_env.advance(1.5)

    assert bodies(q.receive(10)) == ["job"]


def test_change_visibility_to_zero_makes_a_message_receivable_at_once(queue_env):
    q = queue_env.make_queue("jobs.fifo")
    send(q, "job")
    (message,) = q.receive(10)

    q.change_visibility(message.receipt_handle, 0)

    (again,) = q.receive(10)
    assert again.message_id == message.message_id and again.receive_count == 2


def test_change_visibility_extends_the_time_a_worker_holds_a_message(queue_env):
    q = queue_env.make_queue("jobs.fifo", SHORT)
    send(q, "slow job")
    (message,) = q.receive(10)

    q.change_visibility(message.receipt_handle, 2)
    queue_env.advance(1.2)
    assert q.receive(10) == []
    queue_env.advance(1.2)

    assert bodies(q.receive(10)) == ["slow job"]


@pytest.mark.moto_gap("moto accepts any receipt handle a message ever had: a stale one deletes the message the newer delivery holds")
def test_stale_receipt_handle_neither_deletes_nor_changes_the_newer_delivery(queue_env):
    q = queue_env.make_queue("jobs.fifo", SHORT)
    send(q, "job")
    (old,) = q.receive(10)
    queue_env.advance(1.5)
    (new,) = q.receive(10, visibility_timeout=30)

    q.delete(old.receipt_handle)  # ignored: the newer delivery owns the message
    with pytest.raises(ReceiptHandleError):
        q.change_visibility(old.receipt_handle, 0)

    attrs = q.attributes()
    assert (attrs.visible, attrs.in_flight) == (0, 1)
    q.delete(new.receipt_handle)
    assert q.attributes().in_flight == 0


def test_message_failed_on_every_receive_moves_to_the_dead_letter_queue_with_its_reason(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    sent_id = send(q, "not json", group="session-1", dedup="c1:query")

    outcomes = []
    for attempt in range(1, 4):
        (message,) = q.receive(10)
        assert message.receive_count == attempt
        outcomes.append(q.fail(message, f"invalid event (attempt {attempt})"))

    assert outcomes == [False, False, True]
    assert q.receive(10) == []
    assert q.dead_letter_queue is not None
    (dead,) = drain(q.dead_letter_queue)
    assert dead.body == "not json"
    assert dead.message_id == sent_id
    assert (dead.group_id, dead.dedup_id) == ("session-1", "c1:query")
    assert dead.sent_at == message.sent_at
    assert dead.attributes[FAILURE_REASON_ATTRIBUTE] == "invalid event (attempt 3)"
    assert dead.attributes[SOURCE_QUEUE_ATTRIBUTE] == "analytics.fifo"
    assert dead.attributes[RECEIVE_COUNT_ATTRIBUTE] == "3"


def test_message_never_deleted_moves_to_the_dead_letter_queue_when_received_once_too_often(queue_env):
    # a worker that crashes mid-message never calls fail(): the timeouts alone count
    q = queue_env.make_queue("analytics.fifo", SHORT)
    send(q, "crashes the worker")
    for _ in range(3):
        assert bodies(q.receive(10)) == ["crashes the worker"]
        queue_env.advance(1.5)

    assert q.receive(10) == []
    assert q.dead_letter_queue is not None
    (dead,) = drain(q.dead_letter_queue)
    assert dead.body == "crashes the worker"
    assert "maxReceiveCount" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
    assert dead.attributes[RECEIVE_COUNT_ATTRIBUTE] == "3"


def test_dead_lettering_the_head_of_a_group_lets_the_rest_of_the_group_through(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=1))
    send_many(q, ["poison", "fine-1", "fine-2"], group="s")
    (poison,) = q.receive(1)
    assert q.receive(10) == []  # the group waits behind its head

    assert q.fail(poison, "cannot parse") is True

    assert bodies(drain(q)) == ["fine-1", "fine-2"]
    assert q.dead_letter_queue is not None
    assert bodies(drain(q.dead_letter_queue)) == ["poison"]


def test_fail_with_a_retry_delay_keeps_the_message_out_of_sight_until_then(queue_env):
    q = queue_env.make_queue("jobs.fifo")
    send(q, "flaky job")
    (message,) = q.receive(10)

    assert q.fail(message, "upstream 503", retry_delay=1.0) is False
    assert q.receive(10) == []
    queue_env.advance(1.5)

    (again,) = q.receive(10)
    assert again.receive_count == 2


def test_max_receive_count_is_the_queues_own(queue_env):
    q = queue_env.make_queue("strict.fifo", QueueConfig(max_receive_count=1))
    send(q, "one chance")
    (message,) = q.receive(10)

    assert q.fail(message, "no") is True
    assert q.dead_letter_queue is not None
    assert bodies(drain(q.dead_letter_queue)) == ["one chance"]


def test_a_dead_letter_queue_has_none_of_its_own_and_fail_there_keeps_the_message(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=1))
    send(q, "poison")
    (message,) = q.receive(10)
    q.fail(message, "bad")
    dlq = q.dead_letter_queue
    assert dlq is not None and dlq.dead_letter_queue is None

    for _ in range(4):
        (dead,) = dlq.receive(10)
        assert dlq.fail(dead, "still looking") is False

    assert bodies(drain(dlq)) == ["poison"]


def test_redrive_moves_dead_letters_back_to_be_delivered_again(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=1))
    send_many(q, ["p1", "p2"], group="s")
    for message in q.receive(10):
        q.fail(message, "store schema bug")
    assert q.dead_letter_queue is not None
    assert q.dead_letter_queue.attributes().visible == 2

    assert q.redrive() == 2

    assert q.dead_letter_queue.attributes().visible == 0
    again = drain(q)
    assert bodies(again) == ["p1", "p2"]
    assert [m.receive_count for m in again] == [1, 1]
    assert all(FAILURE_REASON_ATTRIBUTE not in m.attributes for m in again)
    assert [m.group_id for m in again] == ["s", "s"]


def test_redrive_moves_at_most_the_number_asked_for(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=1))
    send_many(q, [f"p{i}" for i in range(5)], group="s")
    while batch := q.receive(10):
        for message in batch:
            q.fail(message, "bad")

    assert q.redrive(max_messages=3) == 3

    assert bodies(drain(q)) == ["p0", "p1", "p2"]
    assert q.dead_letter_queue is not None
    assert bodies(drain(q.dead_letter_queue)) == ["p3", "p4"]


def test_redrive_of_an_empty_dead_letter_queue_moves_nothing(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    assert q.redrive() == 0



@pytest.mark.parametrize("group", ["shared", None], ids=["one-group", "own-groups"])
def test_redrive_by_id_moves_only_those_and_leaves_the_rest(queue_env, group):
    """``dlq redrive --id``: the chosen letters go back; the others stay in the DLQ, visible at once."""
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=1))
    for i in range(4):
        send(q, f"m{i}", group=group or f"g{i}")
    received = q.receive(10)
    for message in received:
        q.fail(message, "store schema bug")
    ids = {m.body: m.message_id for m in received}
    assert q.redrive(message_ids=[ids["m1"], ids["m3"], "no-such-id"]) == 2
    assert sorted(bodies(drain(q))) == ["m1", "m3"]
    assert q.dead_letter_queue.attributes().visible == 2
    assert sorted(bodies(drain(q.dead_letter_queue))) == ["m0", "m2"]


def test_redrive_edited_sends_the_corrected_bodies_back_in_their_groups_and_leaves_the_rest(queue_env):
    """``dlq redrive --bodies``: a producer's bug fixed in the letters themselves."""
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=1))
    for i in range(3):
        send(q, f"bad {i}", group="session-1")
    received = q.receive(10)
    for message in received:
        q.fail(message, "invalid", permanent=True)
    ids = {m.body: m.message_id for m in received}
    too_large = "x" * (q.config.max_message_bytes + 1)

    moved = q.redrive_edited({ids["bad 0"]: "fixed 0", ids["bad 2"]: "fixed 2", ids["bad 1"]: too_large, "no-such-id": "?"})

    assert moved == 2
    again = drain(q)
    assert bodies(again) == ["fixed 0", "fixed 2"] and {m.group_id for m in again} == {"session-1"}
    assert all(FAILURE_REASON_ATTRIBUTE not in m.attributes for m in again)
    assert q.dead_letter_queue is not None and bodies(drain(q.dead_letter_queue)) == ["bad 1"]  # refused: kept, visible
    assert q.redrive_edited({}) == 0
