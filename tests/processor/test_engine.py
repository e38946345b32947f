"""The batch engine and the consumer loop, with a handler that knows nothing of analytics."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cv_analytics.exceptions import StoreUnavailableError
from cv_analytics.queues.base import Message, OutgoingMessage, Queue, QueueConfig
from cv_analytics.queues.batch import (
    BatchEngine,
    PermanentFailure,
    Status,
    Succeeded,
    TransientFailure,
    UnreadableRecord,
)
from cv_analytics.queues.consumer import Consumer, PeriodicTask
from cv_analytics.queues.lambda_records import message_of_record, messages_of, record_of_message
from cv_analytics.queues.sqlite import SQLiteQueueBackend


class Weird(Exception):
    """An exception no one foresaw, raised by a decoder."""


class Echo:
    """Bodies are ``ok``, ``refuse`` (permanent), ``later`` (transient), ``crash`` (raises while
    decoding), ``deep`` (RecursionError while decoding)."""

    transient_errors = (StoreUnavailableError,)

    def __init__(self) -> None:
        self.handled: list[str] = []
        self.calls = 0

    def decode(self, message: Message) -> str:
        if message.body == "crash":
            raise Weird("the decoder broke")
        if message.body == "deep":
            raise RecursionError("maximum recursion depth exceeded")
        return message.body

    def handle(self, records: Sequence[str]) -> list:
        self.calls += 1
        outcomes = []
        for body in records:
            if body == "refuse":
                outcomes.append(PermanentFailure("refused for good"))
            elif body == "later":
                outcomes.append(TransientFailure("try again"))
            else:
                self.handled.append(body)
                outcomes.append(Succeeded(body))
        return outcomes


@pytest.fixture
def backend(tmp_path, clock):
    return SQLiteQueueBackend(tmp_path / "queues.db", clock=clock)


def _received(queue: Queue, bodies_and_groups: list[tuple[str, str | None]]) -> list[Message]:
    queue.send_batch(
        [OutgoingMessage(b, g, f"{i}-{b}" if queue.config.fifo else None) for i, (b, g) in enumerate(bodies_and_groups)]
    )
    return queue.receive(10)


def test_any_exception_while_decoding_one_message_is_that_messages_permanent_failure(backend):
    queue = backend.queue("q.fifo", QueueConfig())
    batch = _received(queue, [("ok", "g"), ("crash", "g"), ("deep", "g"), ("ok", "g")])
    handler = Echo()
    engine = BatchEngine(handler)

    result = engine.settle(queue, engine.process(batch), delete=True, outage_delay=None)

    assert [i.status for i in result.items] == [Status.SUCCEEDED, Status.DEAD_LETTERED, Status.DEAD_LETTERED,
                                                Status.SUCCEEDED]  # fmt: skip
    assert "the decoder broke" in result.items[1].reason and "deep" in result.items[2].reason
    assert handler.handled == ["ok", "ok"] and handler.calls == 1, "the good ones in one call, in order"
    assert queue.dead_letter_queue.attributes().visible == 2
    assert queue.attributes().visible == queue.attributes().in_flight == 0


def test_what_a_handler_did_handle_past_a_retried_message_is_kept_not_redone(backend):
    queue = backend.queue("q.fifo", QueueConfig())
    batch = _received(queue, [("later", "g"), ("ok", "g"), ("refuse", "g"), ("ok", "h")])
    engine = BatchEngine(Echo())  # handles past a transient failure: against the protocol, but done is done

    result = engine.process(batch)

    assert [i.status for i in result.items] == [Status.TRANSIENT, Status.SUCCEEDED, Status.PERMANENT,
                                                Status.SUCCEEDED]  # fmt: skip
    assert result.lambda_response() == {"batchItemFailures": [{"itemIdentifier": batch[0].message_id},
                                                              {"itemIdentifier": batch[2].message_id}]}  # fmt: skip


def test_the_fifo_rule_skips_what_a_handler_did_not_attempt_and_not_on_a_standard_queue(backend):
    class Stops(Echo):
        def handle(self, records):  # stops a group at its first transient failure, as the protocol asks
            return [TransientFailure("down") if b == "later" else TransientFailure("not attempted") for b in records]

    fifo_batch = _received(backend.queue("f.fifo", QueueConfig()), [("later", "g"), ("ok", "g"), ("ok", "h")])
    fifo = BatchEngine(Stops()).process(fifo_batch, fifo=True)
    assert [i.status for i in fifo.items] == [Status.TRANSIENT, Status.SKIPPED, Status.TRANSIENT]

    standard = backend.queue("standard", QueueConfig(fifo=False))
    plain = BatchEngine(Echo()).process(_received(standard, [("later", None), ("ok", None)]), fifo=False)
    assert [i.status for i in plain.items] == [Status.TRANSIENT, Status.SUCCEEDED]


def test_a_message_failing_on_its_last_receive_does_not_hold_its_group(backend, clock):
    queue = backend.queue("q.fifo", QueueConfig(max_receive_count=1))
    batch = _received(queue, [("later", "g"), ("ok", "g")])
    engine = BatchEngine(Echo())
    result = engine.settle(queue, engine.process(batch, max_receive_count=1), delete=True, outage_delay=None)
    assert [i.status for i in result.items] == [Status.DEAD_LETTERED, Status.SUCCEEDED]
    assert "the last" in result.items[0].reason


def test_an_unreadable_record_is_retried_and_holds_its_group_only():
    engine = BatchEngine(Echo())
    good = message_of_record(
        {"messageId": "m2", "receiptHandle": "h2", "body": "ok", "attributes": {"MessageGroupId": "g"}}
    )
    result = engine.process([UnreadableRecord("m1", "g", "malformed"), good])
    assert [i.status for i in result.items] == [Status.TRANSIENT, Status.SKIPPED]
    assert result.lambda_response() == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}


def test_lambda_records_map_to_messages_and_back():
    message = Message("id-1", "rh", '{"a": 1}', "g", "d", 2, 1_763_164_800.5, {"traceId": "t"})
    record = record_of_message(message, source_arn="arn:aws:sqs:us-east-1:1:q.fifo", region="us-east-1")
    assert message_of_record(record) == message
    record["attributes"]["ApproximateReceiveCount"] = "many"
    (unreadable,), nameless = messages_of([record, {"body": "no id"}])
    assert isinstance(unreadable, UnreadableRecord) and unreadable.group_id == "g" and len(nameless) == 1


def test_stop_finishes_the_batch_in_hand_and_leaves_the_rest(backend, clock):
    queue = backend.queue("q.fifo", QueueConfig())
    queue.send_batch([OutgoingMessage("ok", f"g{i}", str(i)) for i in range(10)])
    handler = Echo()
    consumer = Consumer(queue, BatchEngine(handler), clock=clock, wait_seconds=0, max_messages=3)
    consumer.on_batch = lambda result: consumer.stop()  # as SIGTERM does, mid-batch

    consumer.run()

    assert len(handler.handled) == 3
    assert queue.attributes().visible == 7 and queue.attributes().in_flight == 0


def test_a_failing_periodic_task_never_stops_the_loop_and_a_drain_runs_every_task_before_it_returns(
    backend, clock
):
    queue = backend.queue("q.fifo", QueueConfig())
    runs: list[str] = []

    def broken():
        runs.append("broken")
        raise ValueError("year 3170843 is out of range")

    tasks = [PeriodicTask("broken", 60, broken), PeriodicTask("sweep", 3600, lambda: runs.append("sweep"))]
    consumer = Consumer(queue, BatchEngine(Echo()), clock=clock, wait_seconds=0, periodic=tasks)
    clock.advance(61)
    queue.send_batch([OutgoingMessage("ok", "g", "1")])

    consumer.run(drain=True)

    assert runs == ["broken", "broken", "sweep"], "due once, then all once more at the drain's end"


def test_a_transient_failure_comes_back_after_the_handlers_own_retry_delay(backend, clock):
    class Backs(Echo):
        def handle(self, records):
            return [TransientFailure("busy", retry_delay=30.0) if b == "later" else Succeeded(b) for b in records]

    queue = backend.queue("delayed", QueueConfig(fifo=False, visibility_timeout=300.0))
    engine = BatchEngine(Backs())
    batch = _received(queue, [("later", None), ("ok", None)])
    result = engine.settle(queue, engine.process(batch, fifo=False), delete=True, outage_delay=None)
    assert [i.retry_delay for i in result.items] == [30.0, None]
    assert queue.receive(10, wait_seconds=0) == []
    clock.advance(29)
    assert queue.receive(10, wait_seconds=0) == []
    clock.advance(2)
    assert [m.body for m in queue.receive(10, wait_seconds=0)] == ["later"]
