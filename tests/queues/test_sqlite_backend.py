"""What is particular to the embedded queue: plans, cost, schema, files, fork, clocks."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from cv_analytics.clock import ManualClock, SystemClock
from cv_analytics.exceptions import DatabaseCorruptError, QueueError, QueueUnavailableError
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE, OutgoingMessage, QueueConfig
from cv_analytics.queues.sqlite import SQLiteQueue, SQLiteQueueBackend, dead_letter_queue_name
from cv_analytics.queues.sqlite.schema import _CLAIM, _COUNT_IN_FLIGHT, _FIRST_READY, _REFRESH_GROUP, SCHEMA_VERSION

from .envs import ThreadedManualClock
from .helpers import bodies, drain, send, send_many


@pytest.fixture
def clock() -> ThreadedManualClock:
    """A manual clock that gives the test's other threads a moment before a long poll moves time on."""
    return ThreadedManualClock()


@pytest.fixture
def backend(tmp_path, clock: ManualClock):
    b = SQLiteQueueBackend(tmp_path / "q.db", clock=clock, busy_timeout=0.2, poll_interval=1.0)
    yield b
    b.close()


def _plan(backend: SQLiteQueueBackend, sql: str, params: tuple) -> str:
    rows = backend.connection().execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return "\n".join(row[-1] for row in rows)


# -- cost -------------------------------------------------------------------------


def test_receive_walks_indexes_without_a_sort_or_a_table_scan(backend):
    backend.queue("a.fifo")
    statements = [(_CLAIM, (1, 0.0, 10)), (_FIRST_READY, (1,)), (_COUNT_IN_FLIGHT, (1, 0.0)), (_REFRESH_GROUP, (1,))]
    for sql, params in statements:
        plan = _plan(backend, sql, params)
        assert "TEMP B-TREE" not in plan, plan
        assert not any(line.startswith("SCAN") for line in plan.splitlines()), plan


def _vm_steps(backend: SQLiteQueueBackend, action) -> int:
    """SQLite virtual-machine steps ``action`` costs on this thread's connection (in hundreds)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn = backend.connection()
    conn.set_progress_handler(count, 100)
    try:
        action()
    finally:
        conn.set_progress_handler(None, 0)
    return steps


def _receive_and_delete(queue: SQLiteQueue) -> None:
    batch = queue.receive(10)
    assert len(batch) == 10
    queue.delete_batch([m.receipt_handle for m in batch])


def _blocked_group_and_singles(queue: SQLiteQueue, blocked: int, singles: int) -> None:
    """A group of ``blocked`` messages whose head is in flight, and ``singles`` one-message groups."""
    send_many(queue, [f"{queue.name}-b{i}" for i in range(blocked)], group="blocked")
    (head,) = queue.receive(1)
    assert head.body.endswith("-b0")
    for g in range(singles):
        queue.send_batch([OutgoingMessage(f"s{g}", f"g{g}", f"d{g}")])


def test_a_receive_costs_the_same_behind_a_big_backlog_and_a_big_blocked_group(backend):
    small = backend.queue("small.fifo")
    _blocked_group_and_singles(small, blocked=20, singles=30)
    large = backend.queue("large.fifo")
    _blocked_group_and_singles(large, blocked=20_000, singles=3_000)

    small_cost = _vm_steps(backend, lambda: _receive_and_delete(small))
    large_cost = _vm_steps(backend, lambda: _receive_and_delete(large))

    # O(batch): B-tree depth may add a little, a scan of the backlog would add a thousandfold
    assert large_cost < 2 * small_cost, (small_cost, large_cost)


# -- naming, configuration, schema ------------------------------------------------------


def test_dead_letter_queues_are_named_as_sqs_would_name_them(backend):
    assert dead_letter_queue_name("analytics") == "analytics-dlq"
    assert dead_letter_queue_name("analytics.fifo") == "analytics-dlq.fifo"

    q = backend.queue("analytics.fifo")

    assert q.dead_letter_queue is not None and q.dead_letter_queue.name == "analytics-dlq.fifo"
    assert backend.queue("analytics-dlq.fifo").dead_letter_queue is None
    assert backend.queue_names() == ["analytics-dlq.fifo", "analytics.fifo"]


@pytest.mark.parametrize("name", ["", "has space", "slash/y", "x" * 77])
def test_queue_names_sqs_would_refuse_are_refused(backend, name):
    with pytest.raises(ValueError, match="invalid queue name"):
        backend.queue(name)


def test_a_queue_keeps_its_configuration_in_the_file(tmp_path, clock):
    path = tmp_path / "q.db"
    SQLiteQueueBackend(path, clock=clock).queue("jobs.fifo", QueueConfig(visibility_timeout=5.0))

    reopened = SQLiteQueueBackend(path, clock=clock)
    assert reopened.queue("jobs.fifo").config.visibility_timeout == 5.0

    reopened.queue("jobs.fifo", QueueConfig(visibility_timeout=7.0, retention_seconds=20 * 86400.0))
    again = SQLiteQueueBackend(path, clock=clock).queue("jobs.fifo")
    assert again.config.visibility_timeout == 7.0
    assert again.dead_letter_queue is not None
    assert again.dead_letter_queue.config.retention_seconds == 20 * 86400.0  # never shorter than the source's


def test_a_database_from_a_newer_version_is_refused(tmp_path, clock):
    path = tmp_path / "q.db"
    assert SQLiteQueueBackend(path, clock=clock).schema_version == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE queue_schema SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(QueueError, match="Upgrade cv-analytics"):
        SQLiteQueueBackend(path, clock=clock)


def test_queues_can_share_a_file_with_the_store(tmp_path, clock):
    from cv_analytics.events import QueryEvent
    from cv_analytics.stores.sqlite import SQLiteStore

    path = tmp_path / "everything.db"
    store = SQLiteStore(path, clock=clock)
    q = SQLiteQueueBackend(path, clock=clock).queue("analytics.fifo")

    send(q, "hello")
    store.record_events([QueryEvent(correlation_id="c1", timestamp=1, query="q")])

    assert bodies(drain(q)) == ["hello"]
    assert store.counts().pending_queries == 1
    store.close()


# -- errors -----------------------------------------------------------------------------


def test_a_locked_database_says_to_retry_later(backend, tmp_path):
    q = backend.queue("a.fifo")
    locker = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(QueueUnavailableError, match="retry later") as caught:
            send(q, "x")
    finally:
        locker.execute("ROLLBACK")
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert "busy_timeout=0.2s" in str(caught.value)


def test_a_path_that_cannot_be_a_database_raises_queue_unavailable(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(QueueUnavailableError, match="a-file"):
        SQLiteQueueBackend(tmp_path / "a-file" / "q.db")


def test_a_file_that_is_not_a_database_raises_the_fatal_corrupt_error_not_a_sqlite_error(tmp_path):
    path = tmp_path / "q.db"
    path.write_bytes(b"this is not an SQLite database, it is a text file that got in the way" * 100)
    # fatal, not "unavailable": waiting does not repair a file (issue 7, item 14)
    with pytest.raises(DatabaseCorruptError, match="not a database") as caught:
        SQLiteQueueBackend(path)
    assert not isinstance(caught.value, QueueUnavailableError)


# -- semantics particular to this backend ---------------------------------------------------


def test_a_crash_after_an_earlier_failure_keeps_both_reasons_in_the_dead_letter(backend, clock):
    q = backend.queue("a.fifo", QueueConfig(visibility_timeout=1.0))
    send(q, "flaky")
    (first,) = q.receive(10)
    q.fail(first, "store timed out")
    for _ in range(2):  # then two workers die holding it
        assert len(q.receive(10)) == 1
        clock.advance(1.5)

    assert q.receive(10) == []
    assert q.dead_letter_queue is not None
    (dead,) = drain(q.dead_letter_queue)
    reason = dead.attributes[FAILURE_REASON_ATTRIBUTE]
    assert reason.startswith("maxReceiveCount 3 exceeded: visibility timeout expired without delete")
    assert "last failure (receive 1): store timed out" in reason


def test_a_receipt_handle_outlives_its_timeout_until_the_message_is_received_again(backend, clock):
    q = backend.queue("a.fifo", QueueConfig(visibility_timeout=1.0))
    send(q, "slow but done")
    (message,) = q.receive(10)
    clock.advance(5)

    q.delete(message.receipt_handle)

    assert q.attributes().visible == 0
    assert q.receive(10) == []


def test_a_zero_visibility_timeout_never_hands_out_a_message_twice_in_one_receive(backend, clock):
    q = backend.queue("a.fifo", QueueConfig(retention_seconds=60.0))
    send(q, "old")
    clock.advance(61)  # expired: the receive removes it and looks again
    send_many(q, ["a1", "a2"], group="a")

    batch = q.receive(10, visibility_timeout=0)

    assert bodies(batch) == ["a1", "a2"]
    assert bodies(q.receive(10)) == ["a1", "a2"]  # visible again at once


def test_native_redrive_keeps_message_ids_and_sent_times(backend, clock):
    q = backend.queue("a.fifo", QueueConfig(max_receive_count=1))
    sent_id = send(q, "poison")
    (message,) = q.receive(10)
    q.fail(message, "bad")
    clock.advance(60)

    assert q.redrive() == 1

    (again,) = q.receive(10)
    assert (again.message_id, again.sent_at, again.dedup_id) == (sent_id, message.sent_at, "poison")


def test_dead_letters_someone_is_looking_at_stay_put_during_a_redrive(backend):
    q = backend.queue("a.fifo", QueueConfig(max_receive_count=1))
    send(q, "looked at", group="g1")
    send(q, "ready", group="g2")
    for m in q.receive(10):
        q.fail(m, "bad")
    dlq = q.dead_letter_queue
    assert dlq is not None
    held = {m.body: m for m in dlq.receive(10)}
    dlq.change_visibility(held["looked at"].receipt_handle, 600)
    dlq.change_visibility(held["ready"].receipt_handle, 0)

    assert q.redrive() == 1

    assert bodies(drain(q)) == ["ready"]
    assert dlq.attributes().in_flight == 1


def test_expired_messages_and_deduplication_ids_leave_the_file(backend, clock, tmp_path):
    q = backend.queue("a.fifo")
    send_many(q, [f"m{i}" for i in range(5)])
    clock.advance(5 * 86400)

    send(q, "fresh")  # a send sweeps what expired

    with sqlite3.connect(tmp_path / "q.db") as conn:
        assert conn.execute("SELECT count(*) FROM queue_messages").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM queue_dedup").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM queue_groups").fetchone()[0] == 1


def test_a_standard_queue_returns_the_group_id_it_was_given(backend):
    q = backend.queue("plain", QueueConfig(fifo=False))
    q.send_batch([OutgoingMessage("tagged", "tenant-1"), OutgoingMessage("untagged")])

    assert {m.body: m.group_id for m in drain(q)} == {"tagged": "tenant-1", "untagged": None}


# -- clocks and long polling -------------------------------------------------------------------


def test_a_long_poll_woken_by_another_thread_does_not_move_the_manual_clock(backend, clock):
    q = backend.queue("a.fifo")
    start = clock.now()
    received = []
    receiver = threading.Thread(target=lambda: received.extend(q.receive(10, wait_seconds=20)))

    receiver.start()
    send(q, "hello")
    receiver.join(timeout=30)

    assert bodies(received) == ["hello"]
    assert clock.now() == start  # it returned on the notification, not at the deadline


def test_an_empty_long_poll_moves_the_manual_clock_to_its_deadline(backend, clock):
    q = backend.queue("a.fifo")
    start = clock.now()

    assert q.receive(10, wait_seconds=20) == []
    assert clock.now() == start + 20


def test_a_long_poll_moves_the_manual_clock_only_until_a_message_becomes_visible(backend, clock):
    q = backend.queue("a.fifo", QueueConfig(visibility_timeout=3.0))
    send(q, "comes back")
    q.receive(10)
    start = clock.now()

    (again,) = q.receive(10, wait_seconds=20)

    assert again.receive_count == 2
    assert clock.now() == start + 3


def _send_when_told(path: str, go) -> None:  # runs in a forked child
    q = SQLiteQueueBackend(path).queue("a.fifo")
    go.wait()
    send(q, "from another process")


@pytest.mark.slow
def test_a_long_poll_on_the_real_clock_notices_a_send_from_another_process(tmp_path, monkeypatch):
    path = str(tmp_path / "q.db")
    q = SQLiteQueueBackend(path, clock=SystemClock(), poll_interval=0.02).queue("a.fifo")
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    versions: list[int] = []
    original = SQLiteQueue._data_version

    def recording(self: SQLiteQueue) -> int:
        versions.append(original(self))
        if len(versions) == 2:  # the first poll of the wait: the receiver is waiting now
            go.set()
        return versions[-1]

    monkeypatch.setattr(SQLiteQueue, "_data_version", recording)
    child = ctx.Process(target=_send_when_told, args=(path, go))
    child.start()

    received = q.receive(10, wait_seconds=20)
    child.join(timeout=30)

    assert child.exitcode == 0
    assert bodies(received) == ["from another process"]
    # the wait ended because another connection committed, seen through PRAGMA data_version
    # (the child opening the queue may commit once more before its send, under load)
    assert len(set(versions)) >= 2, versions


def _use_inherited_queue(q: SQLiteQueue, parent_conn_id: int, out) -> None:  # runs in a forked child
    try:
        fresh = id(q._backend.connection()) != parent_conn_id
        send_many(q, [f"child-{i}" for i in range(20)], group="child")
        taken = drain(q)
        out.put((fresh, sorted(bodies(taken))))
    except Exception as exc:  # pragma: no cover - reported to the parent
        out.put((False, repr(exc)))


@pytest.mark.slow
def test_a_queue_opened_before_fork_gets_a_fresh_connection_in_the_child(tmp_path):
    q = SQLiteQueueBackend(tmp_path / "q.db", clock=SystemClock()).queue("a.fifo")
    send(q, "before fork")
    parent_conn = q._backend.connection()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()

    child = ctx.Process(target=_use_inherited_queue, args=(q, id(parent_conn), out))
    child.start()
    fresh, taken = out.get(timeout=60)
    child.join(timeout=30)

    assert fresh is True
    assert "before fork" in taken and len(taken) == 21
    # the parent's connection is untouched and still works
    assert q._backend.connection() is parent_conn
    send(q, "after fork")
    assert bodies(drain(q)) == ["after fork"]


class _RecordingClock(ManualClock):
    """A clock of no known type: records how the queue waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, seconds, event=None):
        self.waits.append(seconds)
        if event is not None and event.is_set():
            return True
        self.advance(max(0.0, seconds))
        return event is not None and event.is_set()

    def sleep(self, seconds):
        raise AssertionError("a long poll waits with Clock.wait(seconds, event), never a bare sleep")


@pytest.mark.parametrize("backend_name", ["sqlite", "memory"])
def test_a_long_poll_waits_through_clock_wait_whatever_the_clock_type(tmp_path, backend_name):
    from cv_analytics.queues.memory import MemoryQueueBackend

    clock = _RecordingClock()
    backend = (
        SQLiteQueueBackend(tmp_path / "q.db", clock=clock, poll_interval=1.0)
        if backend_name == "sqlite"
        else MemoryQueueBackend(clock=clock)
    )
    q = backend.queue("a.fifo")
    start = clock.monotonic()

    assert q.receive(10, wait_seconds=5) == []

    assert clock.monotonic() - start == pytest.approx(5.0)
    assert clock.waits and sum(clock.waits) == pytest.approx(5.0)
