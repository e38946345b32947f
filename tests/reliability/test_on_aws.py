"""Scenarios 1, 4, 5 and 8 of the fault suite on the AWS backends: SQS, DynamoDB and SES on moto.

The Lambda handlers are driven as the SQS event source mapping drives them
(:mod:`tests.aws_e2e.lambda_poller`: batches of up to 10, Lambda's event, the partial batch
response, the delete of the rest), in a process of their own where a scenario kills the
function (:mod:`.aws_poller`). moto serves a few hundred requests a second on this machine,
so the traffic is scaled down from the embedded scenarios' (each row says how much), and the
queues' visibility timeouts are shortened (as an operator may) so that what a crash leaves
in flight comes back within the test.
"""

from __future__ import annotations

import json
import os
import pathlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cv_analytics.entrypoints import aws_lambda as handlers
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE, RECEIVE_COUNT_ATTRIBUTE
from cv_analytics.wiring import open_store
from tests.aws_e2e.conftest import Deployment, aws  # noqa: F401 - the fixture

from .harness import (
    CliProcess,
    Survived,
    Tally,
    assert_exactly_once,
    contract_traffic,
    random_moments,
    record_survived,
    tally_interactions,
    wait_until,
)

pytestmark = pytest.mark.slow

BACKEND = "aws (moto)"
ROOT = pathlib.Path(__file__).resolve().parents[2]
#: What a crashed invocation's messages wait before SQS gives them to the next one (the stack's is 300 s).
VISIBILITY_SECONDS = 2


def _poller_env(deployment: Deployment) -> dict[str, str]:
    """A function's environment: the stack's variables, moto's endpoint and dummy credentials, this tree first."""
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    return {**os.environ, **deployment.env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def _poller(env: dict[str, str], handler: str, queue_url: str, logs: pathlib.Path, *options: str) -> CliProcess:
    process = CliProcess(
        env, handler, queue_url, *options, log_dir=logs, name=handler, module="tests.reliability.aws_poller", cwd=ROOT
    )
    process.wait_for_output("polling", timeout=60)
    return process


def _shorten_visibility(deployment: Deployment, url: str, seconds: int = VISIBILITY_SECONDS) -> None:
    deployment.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(seconds)})


def _drained(deployment: Deployment, url: str) -> bool:
    return deployment.queue_counts(url) == (0, 0)


@pytest.fixture
def logs(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "logs"


# -- 1. the analytics function killed mid-batch --------------------------------------------------


def test_analytics_lambda_killed_at_random_moments_loses_and_duplicates_nothing(
    aws: Deployment, logs: pathlib.Path  # noqa: F811 - the fixture
) -> None:
    kills, seed, pairs = 5, 101, 500
    traffic = contract_traffic(pairs, sessions=97, seed=seed, prefix="aws-kill-")
    _shorten_visibility(aws, aws.queue_url)
    env = _poller_env(aws)
    lifetimes = random_moments(kills, low=0.3, high=1.5, seed=seed)
    client = aws.analytics_client()
    poller = _poller(env, "analytics", aws.queue_url, logs)
    sender = threading.Thread(target=_log_paced, args=(client, traffic.events))
    sender.start()  # the chatbot logs while the function works and crashes
    killed_mid_batch = 0
    try:
        for lifetime in lifetimes:
            time.sleep(lifetime)
            killed_mid_batch += _in_flight(aws, aws.queue_url) > 0
            poller.kill()
            poller = _poller(env, "analytics", aws.queue_url, logs)
        sender.join()
        assert client.flush(timeout=60), client.stats()
        wait_until(lambda: _drained(aws, aws.queue_url), 120, what="the analytics queue to drain", interval=0.2)
    finally:
        poller.kill()
    store = open_store(aws.settings)
    try:
        tally = tally_interactions(store, traffic.correlation_ids)
    finally:
        store.close()
    dead = aws.queue_counts(aws.dlq_url)[0]
    record_survived(
        Survived(
            "1. analytics worker kill -9",
            f"the analytics Lambda's container SIGKILLed ×{kills} after random lifetimes of 0.3–1.5 s "
            f"(seed {seed}), {killed_mid_batch} with a batch in flight; visibility timeout {VISIBILITY_SECONDS} s",
            f"{len(traffic):,} events ({pairs:,} interactions, 97 sessions, 10 % responses first) "
            "sent by the client to SQS FIFO, batches of 10",
            tally.lost,
            tally.duplicated,
            notes=f"{dead} in the DLQ; {client.stats().sent:,} sent by the client",
            backend=BACKEND,
        )
    )
    assert_exactly_once(tally, f"interactions in DynamoDB ({_dead_letters(aws)})")
    assert dead == 0, "a crash is no reason to dead-letter anything"
    assert client.stats().sent == len(traffic)


def _dead_letters(deployment: Deployment) -> list[tuple[str, dict[str, str]]]:
    """What the analytics DLQ holds: each body (cut) with its message attributes (the reason, the receive count)."""
    found = deployment.sqs.receive_message(
        QueueUrl=deployment.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"], VisibilityTimeout=0,
    ).get("Messages", [])  # fmt: skip
    return [
        (m["Body"][:120], {k: v.get("StringValue", "") for k, v in m.get("MessageAttributes", {}).items()} | m["Attributes"])
        for m in found
    ]


def _in_flight(deployment: Deployment, url: str) -> int:
    return deployment.queue_counts(url)[1]


def _log_paced(client: Any, events: list[dict[str, Any]], *, per_tick: int = 10, tick: float = 0.05) -> None:
    """The chatbot's steady traffic (200 events/s): moto's FIFO send costs grow with the queue's depth,
    so a burst of everything at once would measure moto, not the function."""
    for start in range(0, len(events), per_tick):
        for event in events[start : start + per_tick]:
            client.log(event)
        time.sleep(tick)
