"""Long polling, and several consumers (threads, processes) sharing one queue."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from cv_analytics.queues.base import Queue, QueueConfig

from .helpers import bodies, send, send_many


def test_long_poll_returns_a_message_sent_from_another_thread_while_it_waits(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    received = []
    receiver = threading.Thread(target=lambda: received.extend(q.receive(10, wait_seconds=2)))

    receiver.start()
    send(q, "hello")
    receiver.join(timeout=30)

    assert not receiver.is_alive()
    assert bodies(received) == ["hello"]


def test_long_poll_on_an_empty_queue_returns_nothing_after_the_wait(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    assert q.receive(10, wait_seconds=1) == []


def test_long_poll_wakes_when_a_message_in_flight_becomes_visible_again(queue_env):
    q = queue_env.make_queue("analytics.fifo", QueueConfig(visibility_timeout=1.0))
    send(q, "retry me")
    (first,) = q.receive(10)

    (again,) = q.receive(10, wait_seconds=2)

    assert again.message_id == first.message_id and again.receive_count == 2


def _consume(
    queue: Queue, log: list[tuple[int, int, str, str]], lock: threading.Lock, wait_seconds: float = 0.0
) -> None:
    """Receive, note when and what, delete; stop after a receive comes back empty."""
    while batch := queue.receive(10, wait_seconds=wait_seconds):
        stamp = time.monotonic_ns()
        with lock:
            log.extend((stamp, position, m.group_id or "", m.body) for position, m in enumerate(batch))
        queue.delete_batch([m.receipt_handle for m in batch])


def _check_exactly_once_in_group_order(log: list[tuple[int, int, str, str]], expected: dict[str, list[str]]) -> None:
    got = [body for *_, body in log]
    assert sorted(got) == sorted(b for group in expected.values() for b in group), "lost or duplicated messages"
    by_group: dict[str, list[str]] = defaultdict(list)
    # a group's next message is delivered only after the previous one was deleted,
    # i.e. after its receiver noted the time: receive times order each group
    for _, _, group, body in sorted(log):
        by_group[group].append(body)
    assert dict(by_group) == expected


def _workload(groups: int, per_group: int) -> dict[str, list[str]]:
    return {f"g{g:03}": [f"g{g:03}-{i:03}" for i in range(per_group)] for g in range(groups)}


@pytest.mark.moto_gap("moto's ReceiveMessage takes no lock: concurrent receivers can be handed messages of one group at once")
def test_receivers_in_several_threads_consume_everything_once_and_in_group_order(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    expected = _workload(groups=30, per_group=10)
    for group, group_bodies in expected.items():
        send_many(q, group_bodies, group=group)
    log: list[tuple[int, int, str, str]] = []
    lock = threading.Lock()

    threads = [threading.Thread(target=_consume, args=(q, log, lock)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    _check_exactly_once_in_group_order(log, expected)
    assert q.attributes().visible == 0


def _process_worker(opener, out: str, start) -> None:  # runs in a forked child
    queue = opener()
    start.wait()
    log: list[tuple[int, int, str, str]] = []
    # long polls: a group whose head another worker holds wakes this one when deleted
    _consume(queue, log, threading.Lock(), wait_seconds=1.0)
    Path(out).write_text(json.dumps(log))


@pytest.mark.moto_gap("moto's ReceiveMessage takes no lock: concurrent receivers can be handed messages of one group at once")
@pytest.mark.slow
def test_worker_processes_sharing_the_queue_consume_everything_exactly_once(queue_env, tmp_path):
    if queue_env.process_opener is None:
        pytest.skip(f"the {queue_env.name} backend has no process_opener")
    config = QueueConfig(visibility_timeout=120.0)  # nothing may come back while the test runs
    opener = queue_env.process_opener("analytics.fifo", config)
    q = opener()  # on the real clock, as the workers are
    expected = _workload(groups=100, per_group=12)
    for group, group_bodies in expected.items():
        send_many(q, group_bodies, group=group)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    outs = [tmp_path / f"worker-{i}.json" for i in range(3)]
    procs = [
        ctx.Process(target=_process_worker, args=(opener, str(out), start))
        for out in outs
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0, 0, 0]

    per_worker = [[tuple(row) for row in json.loads(out.read_text())] for out in outs]
    assert sum(1 for rows in per_worker if rows) >= 2, "the workers should have shared the work"
    _check_exactly_once_in_group_order([row for rows in per_worker for row in rows], expected)
    attrs = q.attributes()
    assert (attrs.visible, attrs.in_flight) == (0, 0)
