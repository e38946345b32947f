"""Hardening items on the Lambda path (issue 7, items 5 and 6): long correlation ids and timestamps in
seconds, through the real client, SQS on moto, the analytics Lambda and DynamoDB."""

from __future__ import annotations

import pytest

from cv_analytics.entrypoints import aws_lambda as handlers
from cv_analytics.events import iso_week
from cv_analytics.stores.models import InteractionStatus
from cv_analytics.wiring import open_store

from .conftest import Deployment

pytestmark = pytest.mark.slow

#: Sunday 22 November 2026, 09:00 UTC: the week 2026-W47
MONDAY_W47_SECONDS = 1_795_338_000


@pytest.mark.parametrize("length", [127, 200, 256])
def test_long_correlation_ids_keep_query_and_response_apart_on_sqs(aws: Deployment, length: int) -> None:
    client = aws.analytics_client()
    cid = ("c" * length)[:length]
    client.log_query("Do you know Rust?", session_id="s" * 200, correlation_id=cid, timestamp=MONDAY_W47_SECONDS * 1000)
    client.log_response(cid, "A little.", session_id="s" * 200, timestamp=MONDAY_W47_SECONDS * 1000 + 300,
                        match_quality=0.4)  # fmt: skip
    assert client.flush(timeout=30)
    assert client.stats().sent == 2 and client.stats().invalid == 0
    aws.mapping().drain(handlers.process_analytics)
    store = open_store(aws.settings)
    try:
        interaction = store.get_interaction(cid)
        assert interaction is not None and interaction.status is InteractionStatus.ANSWERED
    finally:
        store.close()


def test_timestamps_in_seconds_are_filed_under_their_real_week_on_aws(aws: Deployment) -> None:
    client = aws.analytics_client()
    client.log_query("Kubernetes?", session_id="s1", correlation_id="secs-1", timestamp=MONDAY_W47_SECONDS)
    client.log_response("secs-1", "Yes.", session_id="s1", timestamp=MONDAY_W47_SECONDS + 1)
    assert client.flush(timeout=30)
    assert client.stats().seconds_timestamps == 2
    aws.mapping().drain(handlers.process_analytics)
    store = open_store(aws.settings)
    try:
        interaction = store.get_interaction("secs-1")
        assert interaction is not None
        assert interaction.week == "2026-W47" == iso_week(MONDAY_W47_SECONDS * 1000)
    finally:
        store.close()
