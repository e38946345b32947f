"""Fixtures of the end-to-end tests on moto: resources from bootstrap, the handlers configured from
the environment bootstrap prints, an event source mapping driven by hand, SES read back from moto."""

from __future__ import annotations

import email
import email.policy
import json
import pathlib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import boto3
import pytest

from cv_analytics.entrypoints import aws_lambda as handlers
from cv_analytics.deploy.bootstrap import bootstrap
from cv_analytics.boto.metering import RequestCounter
from cv_analytics.client import AnalyticsClient
from cv_analytics.wiring import Settings, open_queue
from tests.moto_server import REGION

from .lambda_poller import EventSourceMapping

PREFIX = "cv-e2e"
SENDER_ADDRESS = "reports@cv.example.dev"
SENDER = f"CV analytics <{SENDER_ADDRESS}>"
OWNER = "owner@cv.example.dev"


@dataclass
class Deployment:
    """What `cv-analytics aws bootstrap` stood up in moto, and the environment a Lambda function would get."""

    endpoint: str
    env: dict[str, str]
    sqs: Any
    ses: Any
    data_dir: pathlib.Path
    clients: list[AnalyticsClient] = field(default_factory=list)

    @property
    def queue_url(self) -> str:
        return self.env["AWS_SQS_URL"]

    @property
    def dlq_url(self) -> str:
        return self.env["CV_ANALYTICS_DLQ_URL"]

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def analytics_client(self, **options: Any) -> AnalyticsClient:
        """The real client, sending to the analytics queue the environment names (as the chatbot would)."""
        settings = self.settings
        client = AnalyticsClient(lambda: open_queue(settings), spool_dir=self.data_dir / "spool", **options)
        self.clients.append(client)
        return client

    def mapping(self, **options: Any) -> EventSourceMapping:
        return EventSourceMapping(self.sqs, self.queue_url, **options)

    def sent_emails(self) -> list[dict[str, Any]]:
        """Every raw email moto's SES accepted, from moto's model dump (``/moto-api/data.json``)."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=30) as response:
            data = json.loads(response.read())
        return list(data.get("ses", {}).get("RawMessage", []))

    def queue_counts(self, url: str) -> tuple[int, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return int(attributes[names[0]]), int(attributes[names[1]])


def parse_email(raw: str) -> EmailMessage:
    message = email.message_from_string(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
def aws(moto_reset: str, tmp_path: pathlib.Path) -> Iterator[Deployment]:
    """Queues and tables from bootstrap, the sender verified in SES, the functions' environment."""
    report = bootstrap(boto3.Session(region_name=REGION), PREFIX)
    ses = boto3.client("ses", region_name=REGION)
    ses.verify_email_identity(EmailAddress=SENDER_ADDRESS)
    env = {
        **report["environment"],
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_reset,
        "SENDER_EMAIL": SENDER,
        "RECIPIENT_EMAIL": OWNER,
        "CV_ANALYTICS_DATA_DIR": str(tmp_path / "data"),
    }
    sqs = boto3.client("sqs", region_name=REGION)
    deployment = Deployment(moto_reset, env, sqs, ses, tmp_path / "data")
    handlers.configure(env=env)
    yield deployment
    handlers.reset()
    for client in deployment.clients:
        client.close(timeout=5)
    sqs.close()
    ses.close()


@pytest.fixture
def counter() -> RequestCounter:
    return RequestCounter()


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on loopback where nothing listens: connections are refused at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
