"""Attributes, delays, retention, size and batch limits, purge, outages."""

from __future__ import annotations

import pytest

from cv_analytics.exceptions import MessageTooLargeError, QueueUnavailableError
from cv_analytics.queues.base import MAX_MESSAGE_BYTES, OutgoingMessage, QueueConfig
from cv_analytics.queues.presets import JOBS_REQUEST

from .helpers import bodies, drain, send, send_many

DAY = 24 * 3600.0


def test_an_empty_queue_has_nothing_anywhere_and_no_oldest_message(queue_env):
    attrs = queue_env.make_queue("analytics.fifo").attributes()

    assert (attrs.name, attrs.visible, attrs.in_flight, attrs.delayed) == ("analytics.fifo", 0, 0, 0)
    assert attrs.oldest_age_seconds is None


def test_attributes_count_visible_and_in_flight_messages(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    send_many(q, ["a1", "a2"], group="a")
    send_many(q, ["b1", "b2", "b3"], group="b")
    (taken,) = q.receive(1)

    attrs = q.attributes()
    assert (attrs.visible, attrs.in_flight, attrs.delayed) == (4, 1, 0)

    q.delete(taken.receipt_handle)
    attrs = q.attributes()
    assert (attrs.visible, attrs.in_flight) == (4, 0)


def test_oldest_age_is_the_time_since_the_oldest_message_was_sent(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    send(q, "old")
    queue_env.advance(1.5)
    send(q, "new")

    age = q.attributes().oldest_age_seconds
    assert age is not None and age >= 1.0


def test_a_delayed_message_is_counted_as_delayed_and_delivered_after_its_delay(queue_env):
    q = queue_env.make_queue("delayed.fifo", QueueConfig(delay_seconds=1.0))
    send(q, "later")

    attrs = q.attributes()
    assert (attrs.visible, attrs.in_flight, attrs.delayed) == (0, 0, 1)
    assert q.receive(10) == []

    queue_env.advance(1.5)
    attrs = q.attributes()
    assert (attrs.visible, attrs.delayed) == (1, 0)
    assert bodies(q.receive(10)) == ["later"]


@pytest.mark.needs_clock
def test_messages_past_retention_are_neither_delivered_nor_counted(queue_env):
    q = queue_env.make_queue("analytics.fifo")  # 4 days
    send_many(q, ["a1", "a2"], group="a")
    send(q, "b1", group="b")
    q.receive(1, visibility_timeout=12 * 3600)  # one of them in flight when it expires

    queue_env.advance(4 * DAY + 1)

    attrs = q.attributes()
    assert (attrs.visible, attrs.in_flight, attrs.delayed, attrs.oldest_age_seconds) == (0, 0, 0, None)
    assert q.receive(10) == []
    send(q, "fresh", group="a")
    assert bodies(drain(q)) == ["fresh"]


@pytest.mark.needs_clock
def test_jobs_queues_keep_their_messages_fourteen_days(queue_env):
    q = queue_env.make_queue(JOBS_REQUEST.queue_name, JOBS_REQUEST.config)
    q.send("job")

    queue_env.advance(13 * DAY)
    assert q.attributes().visible == 1
    queue_env.advance(1 * DAY + 1)
    assert q.attributes().visible == 0


def test_an_oversize_message_is_refused_while_the_rest_of_the_batch_goes_in(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    too_big = "x" * (MAX_MESSAGE_BYTES + 1)

    outcomes = q.send_batch(
        [OutgoingMessage("small-1", "g", "d1"), OutgoingMessage(too_big, "g", "d2"), OutgoingMessage("small-2", "g", "d3")]
    )

    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error_code == "MessageTooLong" and outcomes[1].sender_fault
    assert bodies(drain(q)) == ["small-1", "small-2"]


def test_sending_one_oversize_message_raises_message_too_large(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    with pytest.raises(MessageTooLargeError, match="limit"):
        send(q, "x" * (MAX_MESSAGE_BYTES + 1), dedup="d1")


def test_a_message_of_exactly_the_limit_goes_through_intact(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    body = "é" * (MAX_MESSAGE_BYTES // 2)  # two bytes each in UTF-8
    send(q, body, dedup="d1")
    assert bodies(drain(q)) == [body]


def test_a_batch_of_more_than_ten_is_refused_before_anything_is_sent(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    with pytest.raises(ValueError, match="at most 10"):
        q.send_batch([OutgoingMessage(f"m{i}", "g", f"d{i}") for i in range(11)])
    with pytest.raises(ValueError):
        q.receive(11)
    assert q.attributes().visible == 0


def test_a_fifo_message_without_a_group_is_refused_alone(queue_env):
    q = queue_env.make_queue("analytics.fifo")

    outcomes = q.send_batch([OutgoingMessage("no group", None, "d1"), OutgoingMessage("ok", "g", "d2")])

    assert outcomes[0].error_code == "MissingParameter" and outcomes[0].sender_fault
    assert outcomes[1].ok
    assert bodies(drain(q)) == ["ok"]


def test_message_attributes_travel_with_the_message(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    q.send("body", group_id="g", dedup_id="d1", attributes={"producer": "cv-assistant", "schema": "2"})

    (message,) = q.receive(10)
    assert dict(message.attributes) == {"producer": "cv-assistant", "schema": "2"}


def test_purge_empties_the_queue_including_messages_in_flight(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    send_many(q, [f"m{i}" for i in range(5)], group="a")
    send(q, "b1", group="b")
    (taken,) = q.receive(1)

    q.purge()

    attrs = q.attributes()
    assert (attrs.visible, attrs.in_flight) == (0, 0)
    assert q.receive(10) == []
    q.delete(taken.receipt_handle)  # a handle from before the purge is harmless
    send(q, "after purge", group="a")
    assert bodies(drain(q)) == ["after purge"]


def test_an_unreachable_queue_raises_queue_unavailable_and_recovers(queue_env):
    if queue_env.unavailable is None:
        pytest.skip(f"the {queue_env.name} backend has no unavailable")
    q = queue_env.make_queue("analytics.fifo")
    send(q, "before")

    with queue_env.unavailable():
        with pytest.raises(QueueUnavailableError):
            send(q, "during")
        with pytest.raises(QueueUnavailableError):
            q.receive(10)

    send(q, "after")
    assert bodies(drain(q)) == ["before", "after"]
