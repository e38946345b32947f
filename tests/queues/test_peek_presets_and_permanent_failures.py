"""Peeking without receiving, permanent failures dead-lettered at once, standard queues, the presets."""

from __future__ import annotations

import pytest

from cv_analytics.exceptions import QueueError
from cv_analytics.ops.dlq import peek_dead_letters
from cv_analytics.queues.base import (
    DEAD_LETTERED_AT_ATTRIBUTE,
    FAILURE_REASON_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    QueueConfig,
)
from cv_analytics.queues.presets import ANALYTICS, JOBS_REQUEST, JOBS_RESPONSE, dead_letter_queue_name

from .helpers import bodies, drain, send_many


def _dead_letter_all(q, count: int, group: str = "session-1") -> None:
    """``count`` messages of one group, each dead-lettered as a permanent failure on its first receive."""
    send_many(q, [f"poison-{i:02}" for i in range(count)], group=group)
    moved = 0
    while moved < count:
        batch = q.receive(10)
        assert batch, f"only {moved} of {count} were delivered"
        for message in batch:
            assert q.fail(message, f"invalid event {message.body}", permanent=True)
            moved += 1


def test_peek_lists_every_dead_letter_of_one_group_and_consumes_no_receive(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=3))
    _dead_letter_all(q, 20)
    dlq = q.dead_letter_queue

    first = dlq.peek(100)
    second = dlq.peek(100)

    # SQS cannot read without receiving: a FIFO receive shows at most ten of a group (see SQSQueue._peek)
    shown = 10 if queue_env.name == "sqs" else 20
    assert bodies(first) == [f"poison-{i:02}" for i in range(shown)]
    assert [m.message_id for m in second] == [m.message_id for m in first]
    if queue_env.name != "sqs":  # on SQS each peek is a receive of the copy in the DLQ (documented)
        assert [m.receive_count for m in first] == [m.receive_count for m in second] == [0] * shown
    assert {m.attributes[RECEIVE_COUNT_ATTRIBUTE] for m in second} == {"1"}
    # nothing was left in flight: the dead letters can still be received at once
    assert len(drain(dlq)) == 20


def test_peek_on_the_embedded_backends_counts_no_receive_on_a_source_queue(queue_env):
    if queue_env.name == "sqs":
        pytest.skip("on SQS a peek is a receive: it is refused on a queue with a redrive policy")
    q = queue_env.make_queue("analytics.fifo")
    send_many(q, ["a", "b", "c"])
    assert bodies(q.peek(2)) == ["a", "b"]
    (first,) = q.receive(1)
    assert first.receive_count == 1 and first.body == "a"
    assert [m.receive_count for m in q.peek(10)] == [1, 0, 0]


def test_a_permanent_failure_is_dead_lettered_on_its_first_receive_and_its_group_moves_on(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=3))
    send_many(q, ["not json", "good-1", "good-2"], group="s")
    (poison, *rest) = q.receive(1)
    assert poison.receive_count == 1

    assert q.fail(poison, "malformed: not JSON", permanent=True) is True

    assert bodies(drain(q)) == ["good-1", "good-2"]
    (dead,) = drain(q.dead_letter_queue)
    assert dead.body == "not json" and dead.message_id == poison.message_id
    assert dead.attributes[FAILURE_REASON_ATTRIBUTE] == "malformed: not JSON"
    assert dead.attributes[RECEIVE_COUNT_ATTRIBUTE] == "1"
    assert dead.attributes[SOURCE_QUEUE_ATTRIBUTE] == q.name
    assert float(dead.attributes[DEAD_LETTERED_AT_ATTRIBUTE]) >= poison.sent_at


def test_dead_letter_moves_a_message_at_once_and_a_dead_letter_queue_has_none(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    send_many(q, ["bad"])
    (message,) = q.receive(10)

    q.dead_letter(message, "unknown event type 'ping'")

    assert q.receive(10) == []
    dlq = q.dead_letter_queue
    (dead,) = dlq.receive(10)
    assert dead.attributes[FAILURE_REASON_ATTRIBUTE] == "unknown event type 'ping'"
    with pytest.raises(QueueError, match="no dead-letter queue"):
        dlq.dead_letter(dead, "again")
    with pytest.raises(QueueError, match="no dead-letter queue"):
        dlq.redrive()


def test_a_transient_failure_before_the_last_receive_is_retried_not_dead_lettered(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=3))
    send_many(q, ["retry me"])
    (message,) = q.receive(10)

    assert q.fail(message, "store unavailable") is False

    (again,) = q.receive(10)
    assert again.message_id == message.message_id and again.receive_count == 2


def test_list_dead_letters_shows_reason_receives_source_and_times(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(max_receive_count=3))
    _dead_letter_all(q, 3)

    letters = peek_dead_letters(q, 100)

    assert [letter.body for letter in letters] == ["poison-00", "poison-01", "poison-02"]
    for letter in letters:
        assert letter.reason == f"invalid event {letter.body}"
        assert letter.receive_count == 1 and isinstance(letter.receive_count, int)
        assert letter.source_queue == q.name
        assert letter.dead_lettered_at is not None and letter.dead_lettered_at >= letter.first_seen_at - 1
    with pytest.raises(QueueError, match="no dead-letter queue"):
        peek_dead_letters(q.dead_letter_queue)


def test_a_standard_queue_has_no_groups_so_one_message_in_flight_blocks_nothing(queue_env):
    q = queue_env.make_queue("ai-job-request", QueueConfig(fifo=False))
    for body in ("job-1", "job-2", "job-3"):
        q.send(body)

    (first,) = q.receive(1)
    rest = q.receive(10)

    assert sorted([first.body, *bodies(rest)]) == ["job-1", "job-2", "job-3"]
    assert first.group_id is None


def test_a_standard_queue_does_not_deduplicate(queue_env):
    q = queue_env.make_queue("ai-job-response", QueueConfig(fifo=False))
    q.send("same body")
    q.send("same body")
    assert bodies(drain(q)) == ["same body", "same body"]


@pytest.mark.parametrize("preset", [JOBS_REQUEST, JOBS_RESPONSE], ids=lambda p: p.name)
def test_the_jobs_presets_make_standard_queues_with_standard_dead_letter_queues(queue_env, preset):
    q = queue_env.make_queue(preset.queue_name, preset.config)

    assert not q.config.fifo and q.config.max_receive_count == 3
    assert q.config.visibility_timeout == preset.config.visibility_timeout
    assert q.dead_letter_queue is not None and not q.dead_letter_queue.config.fifo
    assert q.dead_letter_queue.name.endswith(dead_letter_queue_name(preset.name))
    assert q.dead_letter_queue.config.retention_seconds == 14 * 24 * 3600


def test_the_analytics_preset_deduplicates_by_content_like_sqs(queue_env):
    q = queue_env.make_queue(ANALYTICS.queue_name, ANALYTICS.with_visibility_timeout(30))

    first = q.send('{"eventType":"query"}', group_id="s")
    second = q.send('{"eventType":"query"}', group_id="s")

    assert len(drain(q)) == 1
    if queue_env.name != "sqs":  # moto returns a new id for a duplicate (see test_deduplication.py)
        assert first == second
