"""The sender hands a backlog to the queue in one send_many call, and retries what it refused.

A backlog builds up in the spool: here, while the queue hangs on a first send,
the events logged behind it pass the (lowered) spill threshold and are spilled.
"""

from __future__ import annotations

import threading

from .doubles import MemoryQueue, wait_until

SESSION = "session-007"


#: Low enough that the events logged behind a hung send are spilled to the spool.
SPILL_THRESHOLD = 50


def _build_backlog(client, queue: MemoryQueue, count: int) -> None:
    """Log one event the queue hangs on, then ``count`` more that wait behind it."""
    queue.gate = threading.Event()
    client.log_query("q0", session_id=SESSION)
    assert queue.entered.wait(10)
    for i in range(1, count + 1):
        client.log_query(f"q{i}", session_id=SESSION)
    queue.gate.set()


def test_a_backlog_goes_to_the_queue_in_calls_of_hundreds_and_arrives_once_in_order(make_client, queue):
    client = make_client(spill_threshold=SPILL_THRESHOLD)
    _build_backlog(client, queue, 600)

    assert client.flush(timeout=10)

    assert [b["query"] for b in queue.bodies()] == [f"q{i}" for i in range(601)]
    assert sum(queue.send_many_sizes) == 601  # nothing sent twice
    assert max(queue.send_many_sizes) > 10
    assert max(queue.send_many_sizes) <= 500  # max_send_events' default
    assert client.stats().sent == 601
    assert client.stats().spooled > 0


def test_max_send_events_bounds_each_call(make_client, queue):
    client = make_client(max_send_events=40, spill_threshold=SPILL_THRESHOLD)
    _build_backlog(client, queue, 200)

    assert client.flush(timeout=10)

    assert max(queue.send_many_sizes) == 40
    assert [b["query"] for b in queue.bodies()] == [f"q{i}" for i in range(201)]


def test_a_batch_size_under_ten_still_means_at_most_that_many_per_call(make_client, queue):
    client = make_client(batch_size=3, max_send_events=500, spill_threshold=SPILL_THRESHOLD)
    _build_backlog(client, queue, 50)

    assert client.flush(timeout=10)

    assert max(queue.send_many_sizes) <= 3
    assert [b["query"] for b in queue.bodies()] == [f"q{i}" for i in range(51)]


def test_requests_that_find_the_queue_unreachable_mid_call_are_retried_after_those_that_went_in(
    make_client, queue, clock
):
    # the backlog's call is requests 2, 3, ...: request 3 finds the queue down, so
    # its events and every later one come back to the client for a retry
    queue.unreachable_requests = {3}
    client = make_client(spill_threshold=SPILL_THRESHOLD)
    _build_backlog(client, queue, 100)
    assert wait_until(lambda: queue.send_calls >= 3)
    assert len(queue.stored) == 11  # q0, then the first request of the backlog's call

    clock.advance(60)  # past any backoff
    assert client.flush(timeout=10)

    assert [b["query"] for b in queue.bodies()] == [f"q{i}" for i in range(101)]
    stats = client.stats()
    assert (stats.sent, stats.failed, stats.dropped) == (101, 0, 0)
    assert stats.retries >= 1


def test_events_that_trickle_in_go_out_a_batch_at_a_time(make_client, queue):
    # below the spill threshold the buffer feeds the queue one batch per send, as
    # it comes: a burst starting then is spilled before the sender validates it
    client = make_client()
    _build_backlog(client, queue, 300)

    assert client.flush(timeout=10)

    assert client.stats().spooled == 0
    assert max(queue.send_many_sizes) <= 30  # a batch, and what was validated while the first hung
    assert [b["query"] for b in queue.bodies()] == [f"q{i}" for i in range(301)]
