"""RequestCounter: the AWS requests boto3 clients make, counted from botocore's events."""

from __future__ import annotations

import boto3
import botocore.exceptions
import pytest

from cv_analytics.boto.clients import client_config
from cv_analytics.boto.metering import RequestCounter, RequestCounts
from tests.moto_server import REGION


@pytest.fixture
def sqs_url(moto_reset: str) -> str:
    client = boto3.client("sqs", endpoint_url=moto_reset, region_name=REGION)
    return client.create_queue(QueueName="metered")["QueueUrl"]


def test_calls_are_counted_per_service_and_operation(moto_reset, sqs_url):
    counter = RequestCounter()
    client = boto3.client("sqs", endpoint_url=moto_reset, region_name=REGION)
    counter.attach(client)

    for i in range(3):
        client.send_message(QueueUrl=sqs_url, MessageBody=f"m{i}")
    client.receive_message(QueueUrl=sqs_url, MaxNumberOfMessages=10)

    counts = counter.snapshot()
    assert counts.calls == {("sqs", "SendMessage"): 3, ("sqs", "ReceiveMessage"): 1}
    assert counts.attempts_to("sqs") == counts.calls_to("sqs") == 4
    assert counts.errors_from() == 0


def test_a_retried_call_is_one_call_of_several_attempts_and_an_error(moto_reset, sqs_url):
    counter = RequestCounter()
    client = boto3.client("sqs", endpoint_url=moto_reset, region_name=REGION, config=client_config(max_attempts=2))
    counter.attach(client)
    arn = client.get_queue_attributes(QueueUrl=sqs_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    with pytest.raises(botocore.exceptions.ClientError):
        client.start_message_move_task(SourceArn=arn)  # moto answers 500: botocore retries it

    counts = counter.snapshot()
    assert counts.calls_to("sqs", "StartMessageMoveTask") == 1
    assert counts.attempts_to("sqs", "StartMessageMoveTask") == 2
    assert counts.errors_from("sqs", "StartMessageMoveTask") == 1


def test_sqs_bills_a_request_for_every_64_kib_of_payload(moto_reset, sqs_url):
    counter = RequestCounter()
    client = boto3.client("sqs", endpoint_url=moto_reset, region_name=REGION)
    counter.attach(client)

    client.send_message(QueueUrl=sqs_url, MessageBody="x" * 100_000)  # ~100 KB of request: 2 chunks
    client.send_message(QueueUrl=sqs_url, MessageBody="small")

    assert counter.snapshot().billable_requests("sqs", "SendMessage") == 3


def test_attaching_a_session_counts_every_client_made_from_it_and_twice_counts_once(moto_reset, sqs_url):
    counter = RequestCounter()
    session = boto3.Session(region_name=REGION)
    counter.attach(session)
    counter.attach(session)

    session.client("sqs", endpoint_url=moto_reset).get_queue_url(QueueName="metered")
    session.client("cloudwatch", endpoint_url=moto_reset).list_metrics()

    assert counter.snapshot().calls == {("sqs", "GetQueueUrl"): 1, ("cloudwatch", "ListMetrics"): 1}


def test_dynamodb_capacity_units_are_summed_per_table(dynamodb_store, counter):
    from cv_analytics.events import QueryEvent

    before = counter.snapshot()
    dynamodb_store.record_events([QueryEvent(correlation_id="c1", timestamp=1, query="Python?")])
    used = counter.snapshot() - before

    assert set(used.capacity_units) == {dynamodb_store.events_table, dynamodb_store.interactions_table}
    assert used.total_capacity_units == pytest.approx(sum(used.capacity_units.values()))
    assert used.total_capacity_units > 0


def test_a_difference_of_snapshots_is_what_happened_in_between_and_prints_as_markdown():
    earlier = RequestCounts(calls={("sqs", "SendMessageBatch"): 2}, capacity_units={"t": 1.0})
    later = RequestCounts(
        calls={("sqs", "SendMessageBatch"): 5, ("sqs", "ReceiveMessage"): 1},
        attempts={("sqs", "SendMessageBatch"): 3},
        billable={("sqs", "SendMessageBatch"): 4},
        capacity_units={"t": 3.5},
    )

    used = later - earlier

    assert used.calls == {("sqs", "SendMessageBatch"): 3, ("sqs", "ReceiveMessage"): 1}
    assert used.capacity_units == {"t": 2.5}
    table = used.to_markdown()
    assert "| sqs | SendMessageBatch | 3 | 3 | 0 | 4 |" in table
    assert "| t | 2.5 |" in table


def test_only_clients_and_sessions_can_be_attached():
    with pytest.raises(TypeError, match="boto3 client or session"):
        RequestCounter().attach(object())
