"""Fixtures of the AWS backend tests: boto3 against moto over HTTP, requests counted."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import boto3
import pytest

from cv_analytics.boto.metering import RequestCounter
from cv_analytics.clock import ManualClock
from cv_analytics.queues.sqs import SQSQueueBackend
from cv_analytics.stores.dynamodb import DynamoDBStore
from tests.aws_backends.moto_envs import make_dynamodb_store
from tests.moto_server import REGION


@pytest.fixture
def counter() -> RequestCounter:
    return RequestCounter()


@pytest.fixture
def sqs(moto_reset: str) -> Iterator[object]:
    """A raw boto3 SQS client, to look at what the backend did from the outside."""
    client = boto3.client("sqs", endpoint_url=moto_reset, region_name=REGION)
    yield client
    client.close()


@pytest.fixture
def sqs_backend(moto_reset: str, counter: RequestCounter) -> Iterator[SQSQueueBackend]:
    backend = SQSQueueBackend(endpoint_url=moto_reset, region=REGION, create_missing=True, request_counter=counter)
    yield backend
    backend.close()


@pytest.fixture
def dynamodb_store(moto_reset: str, clock: ManualClock, counter: RequestCounter) -> Iterator[DynamoDBStore]:
    store = make_dynamodb_store(moto_reset, clock, pending_ttl_seconds=3600, request_counter=counter)
    yield store
    store.close()


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on loopback where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
