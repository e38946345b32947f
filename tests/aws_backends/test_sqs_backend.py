"""What is specific to the SQS backend: how seam calls map to SQS requests and back.

The shared behaviour (ordering, visibility, dead letters, redrive...) is in
tests/queues/, which runs against this backend too.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest

from cv_analytics.boto.metering import RequestCounter
from cv_analytics.wiring import Settings, open_queue
from cv_analytics.exceptions import MessageTooLargeError, QueueNotFoundError, QueueUnavailableError
from cv_analytics.queues.base import (
    FAILURE_REASON_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    OutgoingMessage,
    QueueConfig,
)
from cv_analytics.queues.sqs import ORIGIN_ATTRIBUTE, SQSQueueBackend
from tests.moto_server import REGION

ANALYTICS = QueueConfig(max_receive_count=3)


def _refuse_bodies(client: Any, refused: str) -> None:
    """Make SQS refuse entries whose body is ``refused``, by giving them an invalid DelaySeconds.

    moto validates little else (characters, attribute counts), so this is how a
    test gets the server itself to refuse one entry of a batch.
    """

    def inject(params: dict[str, Any], **_: Any) -> None:
        for entry in params.get("Entries", []):
            if entry.get("MessageBody") == refused:
                entry["DelaySeconds"] = 9999

    client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", inject)


def test_a_batch_of_ten_is_one_request_and_each_entry_gets_its_message_id(sqs_backend, counter: RequestCounter):
    q = sqs_backend.queue("analytics.fifo", ANALYTICS)
    before = counter.snapshot()

    outcomes = q.send_batch([OutgoingMessage(f"m{i}", "g", f"d{i}") for i in range(10)])
    received = q.receive(10)
    q.delete_batch([m.receipt_handle for m in received])

    used = counter.snapshot() - before
    assert [used.calls_to("sqs", op) for op in ("SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch")] == [1, 1, 1]
    assert used.calls_to() == 3
    assert [o.message_id for o in outcomes] == [m.message_id for m in received]
    assert [m.body for m in received] == [f"m{i}" for i in range(10)]


def test_a_per_entry_failure_from_sqs_fails_that_entry_alone(sqs_backend):
    q = sqs_backend.queue("plain", QueueConfig(fifo=False))
    _refuse_bodies(sqs_backend.client, "refused")

    outcomes = q.send_batch([OutgoingMessage("first"), OutgoingMessage("refused"), OutgoingMessage("last")])

    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].index == 1
    assert outcomes[1].error_code == "InvalidParameterValue" and outcomes[1].sender_fault
    assert "DelaySeconds" in (outcomes[1].error or "")
    assert sorted(m.body for m in q.receive(10)) == ["first", "last"]


def test_a_request_refused_whole_for_one_entry_is_split_until_only_that_entry_fails(sqs_backend, counter):
    q = sqs_backend.queue("analytics.fifo", ANALYTICS)
    _refuse_bodies(sqs_backend.client, "m2")
    before = counter.snapshot()

    outcomes = q.send_batch([OutgoingMessage(f"m{i}", "g", f"d{i}") for i in range(4)])

    assert [o.ok for o in outcomes] == [True, True, False, True]
    assert outcomes[2].sender_fault and outcomes[2].error_code == "InvalidParameterValue"
    # [0..3] refused, then [0, 1] sent, [2, 3] refused, then [2] refused and [3] sent
    assert (counter.snapshot() - before).calls_to("sqs", "SendMessageBatch") == 5
    received = q.receive(10)
    assert [m.body for m in received] == ["m0", "m1", "m3"]  # the group's order is kept


def test_a_message_sqs_finds_too_long_is_message_too_long_for_that_entry_only(sqs_backend, sqs):
    q = sqs_backend.queue("analytics.fifo", ANALYTICS)
    # the queue's limit was lowered after this process read it: only SQS knows
    sqs.set_queue_attributes(QueueUrl=q.url, Attributes={"MaximumMessageSize": "1024"})

    outcomes = q.send_batch([OutgoingMessage("small", "g", "d1"), OutgoingMessage("x" * 2000, "g", "d2")])

    assert outcomes[0].ok
    assert outcomes[1].error_code == "MessageTooLong" and outcomes[1].sender_fault
    with pytest.raises(MessageTooLargeError):
        q.send("y" * 2000, group_id="g", dedup_id="d3")
    assert [m.body for m in q.receive(10)] == ["small"]


def test_a_batch_over_the_payload_limit_is_sent_in_several_requests(sqs_backend, counter):
    q = sqs_backend.queue("analytics.fifo", ANALYTICS)
    before = counter.snapshot()

    outcomes = q.send_batch([OutgoingMessage("x" * 100_000, "g", f"d{i}") for i in range(5)])

    assert all(o.ok for o in outcomes)
    used = counter.snapshot() - before
    assert used.calls_to("sqs", "SendMessageBatch") == 3  # 2 + 2 + 1 messages of ~100 KB under 256 KiB each
    assert used.billable_requests("sqs", "SendMessageBatch") >= 8  # SQS bills every 64 KiB


def test_duplicates_are_stored_once_on_sqs(sqs_backend):
    # the ids moto returns for duplicates differ from SQS's (tests/queues skips those checks); storage does not
    q = sqs_backend.queue("events.fifo", QueueConfig())
    q.send("hello", group_id="g", dedup_id="c1:query")
    q.send("hello again", group_id="g", dedup_id="c1:query")
    q.send("the response", group_id="g", dedup_id="c1:response")

    assert [m.body for m in q.receive(10)] == ["hello", "the response"]


def test_received_messages_carry_group_dedup_id_receive_count_and_sent_time(sqs_backend):
    q = sqs_backend.queue("analytics.fifo", ANALYTICS)
    q.send("body", group_id="session-1", dedup_id="c1:query", attributes={"producer": "cv-assistant"})

    (message,) = q.receive(10, wait_seconds=1)

    assert (message.group_id, message.dedup_id, message.receive_count) == ("session-1", "c1:query", 1)
    assert abs(message.sent_at - dt.datetime.now(dt.UTC).timestamp()) < 300
    assert dict(message.attributes) == {"producer": "cv-assistant"}


def test_dead_lettering_sends_a_copy_with_the_reason_and_deletes_the_original(sqs_backend, sqs):
    q = sqs_backend.queue("analytics.fifo", QueueConfig(max_receive_count=1))
    sent_id = q.send("not json", group_id="session-1", dedup_id="c1:query", attributes={"producer": "web"})
    (message,) = q.receive(10)

    assert q.fail(message, "invalid event: not JSON") is True

    assert q.attributes().in_flight == q.attributes().visible == 0
    assert q.dead_letter_queue is not None
    raw = sqs.receive_message(
        QueueUrl=q.dead_letter_queue.url,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId"],
    )["Messages"]
    (copy,) = raw
    attributes = {k: v["StringValue"] for k, v in copy["MessageAttributes"].items()}
    assert attributes[FAILURE_REASON_ATTRIBUTE] == "invalid event: not JSON"
    assert attributes[SOURCE_QUEUE_ATTRIBUTE] == "analytics.fifo"
    assert attributes[RECEIVE_COUNT_ATTRIBUTE] == "1"
    assert attributes["producer"] == "web"
    assert json.loads(attributes[ORIGIN_ATTRIBUTE])["id"] == sent_id
    # same group; in the DLQ, deduplicated by the original message id, as SQS's own move does
    assert copy["Attributes"]["MessageGroupId"] == "session-1"
    assert copy["Attributes"]["MessageDeduplicationId"] == sent_id


def test_a_message_sqs_moved_by_itself_reads_with_a_reason_saying_so(sqs_backend):
    q = sqs_backend.queue("analytics.fifo", QueueConfig(max_receive_count=1, visibility_timeout=0))
    q.send("crashes the worker", group_id="g", dedup_id="d1")
    (first,) = q.receive(10, visibility_timeout=0)  # never deleted, never failed

    assert q.receive(10) == []  # the next receive made SQS move it

    assert q.dead_letter_queue is not None
    (dead,) = q.dead_letter_queue.receive(10)
    assert dead.message_id == first.message_id
    assert "moved here by SQS" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
    assert dead.attributes[SOURCE_QUEUE_ATTRIBUTE] == "analytics.fifo"


def test_redrive_falls_back_to_receive_send_delete_where_start_message_move_task_is_missing(sqs_backend, counter):
    q = sqs_backend.queue("analytics.fifo", QueueConfig(max_receive_count=1))
    for body in ("p1", "p2"):
        q.send(body, group_id="g", dedup_id=body)
    for message in q.receive(10):
        q.fail(message, "store schema bug")
    before = counter.snapshot()

    assert q.redrive() == 2

    used = counter.snapshot() - before
    # one attempt at the native task (moto lacks it), not retried, then the generic way
    assert used.calls_to("sqs", "StartMessageMoveTask") == used.attempts_to("sqs", "StartMessageMoveTask") == 1
    assert used.calls_to("sqs", "SendMessageBatch") == 1 and used.calls_to("sqs", "DeleteMessageBatch") == 1
    again = q.receive(10)
    assert [m.body for m in again] == ["p1", "p2"]
    assert all(FAILURE_REASON_ATTRIBUTE not in m.attributes for m in again)


def test_oldest_age_comes_from_cloudwatch_when_it_has_the_metric(moto_reset):
    backend = SQSQueueBackend(endpoint_url=moto_reset, region=REGION, create_missing=True, peek_for_oldest_age=False)
    q = backend.queue("analytics.fifo", ANALYTICS)
    q.send("waiting", group_id="g", dedup_id="d1")
    boto3.client("cloudwatch", endpoint_url=moto_reset, region_name=REGION).put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": "analytics.fifo"}],
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30),
                "Value": 421.0,
                "Unit": "Seconds",
            }
        ],
    )

    assert q.attributes().oldest_age_seconds == 421.0
    (message,) = q.receive(10)
    assert message.receive_count == 1  # reading the age received nothing
    backend.close()


def test_without_cloudwatch_data_and_no_peeking_the_age_is_unknown_and_no_message_is_touched(moto_reset):
    # on AWS a peek would count as a receive toward maxReceiveCount: by default only emulators peek
    backend = SQSQueueBackend(endpoint_url=moto_reset, region=REGION, create_missing=True, peek_for_oldest_age=False)
    q = backend.queue("analytics.fifo", ANALYTICS)
    q.send("waiting", group_id="g", dedup_id="d1")

    attrs = q.attributes()

    assert (attrs.visible, attrs.oldest_age_seconds) == (1, None)
    (message,) = q.receive(10)
    assert message.receive_count == 1
    backend.close()


def test_a_missing_queue_is_not_found_with_a_hint_unless_creation_is_asked_for(moto_reset):
    backend = SQSQueueBackend(endpoint_url=moto_reset, region=REGION)
    with pytest.raises(QueueNotFoundError, match="bootstrap"):
        backend.queue("analytics.fifo")
    backend.close()


def test_an_unreachable_endpoint_raises_queue_unavailable(closed_port_url):
    backend = SQSQueueBackend(endpoint_url=closed_port_url, region=REGION, queue_urls={"analytics": f"{closed_port_url}/123456789012/a.fifo"}, max_attempts=1)  # fmt: skip
    with pytest.raises(QueueUnavailableError, match="retry later"):
        backend.queue("analytics")
    backend.close()


def test_an_open_queue_whose_endpoint_goes_away_raises_queue_unavailable_on_every_call(moto_reset):
    from tests.aws_backends.moto_envs import TcpProxy

    proxy = TcpProxy(moto_reset)
    backend = SQSQueueBackend(endpoint_url=proxy.url, region=REGION, create_missing=True, max_attempts=1)
    q = backend.queue("analytics.fifo", ANALYTICS)
    q.send("before", group_id="g", dedup_id="d0")
    (held,) = q.receive(10)
    try:
        with proxy.down():
            calls = [
                lambda: q.send_batch([OutgoingMessage("during", "g", "d1")]),
                lambda: q.receive(10),
                lambda: q.delete(held.receipt_handle),
                lambda: q.change_visibility(held.receipt_handle, 0),
                q.attributes,
                q.purge,
            ]
            for call in calls:
                with pytest.raises(QueueUnavailableError):
                    call()
        q.delete(held.receipt_handle)
        assert q.attributes().in_flight == 0
    finally:
        backend.close()
        proxy.close()


def test_settings_name_the_queue_urls_and_the_endpoint(moto_reset, sqs):
    url = sqs.create_queue(QueueName="cv-analytics-analytics.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings = Settings.from_env({"AWS_SQS_URL": url, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": moto_reset})

    q = open_queue(settings, "analytics")

    assert settings.queue_url == "sqs://"
    assert (q.name, q.url, q.config.fifo) == ("cv-analytics-analytics.fifo", url, True)  # type: ignore[attr-defined]
    assert q.dead_letter_queue is None  # this queue has no redrive policy


def test_a_poison_message_too_large_to_carry_its_reason_is_left_to_the_redrive_policy(sqs_backend):
    q = sqs_backend.queue("analytics.fifo", QueueConfig(max_receive_count=1))
    body = "x" * (256 * 1024)  # the limit exactly: no room for failureReason and the rest
    q.send(body, group_id="g", dedup_id="d1")
    (message,) = q.receive(10)

    assert q.fail(message, "cannot parse") is True

    assert q.receive(10) == []  # that receive made SQS move it
    assert q.dead_letter_queue is not None
    (dead,) = q.dead_letter_queue.receive(10)
    assert dead.body == body and dead.message_id == message.message_id
    assert "moved here by SQS" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
