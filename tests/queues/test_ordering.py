"""FIFO: order within a message group, progress across groups."""

from __future__ import annotations

from cv_analytics.queues.base import OutgoingMessage, QueueConfig

from .helpers import bodies, drain, send_many


def test_messages_of_one_group_come_back_in_the_order_they_were_sent(queue_env):
    q = queue_env.make_queue("orders.fifo")
    sent = [f"m{i:02}" for i in range(25)]
    send_many(q, sent)

    assert bodies(drain(q)) == sent


def test_one_receive_returns_several_messages_of_a_group_in_order(queue_env):
    q = queue_env.make_queue("orders.fifo")
    send_many(q, ["a1", "a2", "a3"], group="a")

    batch = q.receive(10)

    assert bodies(batch) == ["a1", "a2", "a3"]
    assert {m.group_id for m in batch} == {"a"}


def test_a_group_with_a_message_in_flight_blocks_only_itself(queue_env):
    q = queue_env.make_queue("orders.fifo")
    expected = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2"], "c": ["c1"]}
    for group, group_bodies in expected.items():
        send_many(q, group_bodies, group=group)

    (first,) = q.receive(1)
    blocked = first.group_id
    assert first.body == expected[blocked][0]
    others = []
    while batch := q.receive(10):
        others += batch

    assert blocked not in {m.group_id for m in others}
    for group in set(expected) - {blocked}:
        assert [m.body for m in others if m.group_id == group] == expected[group]

    q.delete(first.receipt_handle)
    assert bodies(q.receive(10)) == expected[blocked][1:]


def test_a_failed_message_holds_back_the_rest_of_its_group_until_it_is_redelivered(queue_env):
    q = queue_env.make_queue("orders.fifo")
    send_many(q, ["a1", "a2", "a3"], group="a")
    send_many(q, ["b1"], group="b")
    received = []
    while batch := q.receive(10):
        received += batch
    by_body = {m.body: m for m in received}
    assert set(by_body) == {"a1", "a2", "a3", "b1"}

    # what the processor does: fail the bad one, release the rest of its group unprocessed
    assert q.fail(by_body["a1"], "store said no") is False
    q.change_visibility(by_body["a2"].receipt_handle, 0)
    q.change_visibility(by_body["a3"].receipt_handle, 0)
    q.delete(by_body["b1"].receipt_handle)

    again = drain(q)
    assert bodies(again) == ["a1", "a2", "a3"]
    assert [m.receive_count for m in again] == [2, 2, 2]


def test_messages_sent_to_a_group_while_its_head_is_in_flight_wait_behind_it(queue_env):
    q = queue_env.make_queue("orders.fifo")
    send_many(q, ["a1"], group="a")
    (head,) = q.receive(10)
    send_many(q, ["a2", "a3"], group="a")

    assert q.receive(10) == []
    q.delete(head.receipt_handle)
    assert bodies(drain(q)) == ["a2", "a3"]


def test_standard_queue_delivers_every_message_without_groups_or_deduplication_ids(queue_env):
    q = queue_env.make_queue("plain", QueueConfig(fifo=False))
    sent = [f"m{i}" for i in range(15)]
    for start in range(0, 15, 10):
        outcomes = q.send_batch([OutgoingMessage(b) for b in sent[start : start + 10]])
        assert all(o.ok for o in outcomes)

    received = drain(q)

    assert sorted(bodies(received)) == sorted(sent)
    assert len({m.message_id for m in received}) == 15
