"""The whole pipeline on the AWS backends: resources from bootstrap, configuration from the
environment it prints, the contract messages through the queue, the processor, the store."""

from __future__ import annotations

import boto3

from cv_analytics.deploy.bootstrap import bootstrap
from cv_analytics.wiring import Settings, open_queue, open_store
from cv_analytics.events import parse_event
from cv_analytics.processor.worker import Worker
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE
from cv_analytics.queues.sqs import SQSQueue
from cv_analytics.stores.dynamodb import DynamoDBStore
from cv_analytics.stores.models import InteractionStatus
from tests.moto_server import REGION

CONTRACT = ("query-event.json", "response-event.json", "legacy-response-event.json", "legacy-query-event.json")


def test_contract_messages_sent_to_sqs_become_interactions_in_dynamodb(moto_reset, contract_dir):
    report = bootstrap(boto3.Session(region_name=REGION), "cv-analytics-test")
    settings = Settings.from_env({**report["environment"], "AWS_REGION": REGION, "AWS_ENDPOINT_URL": moto_reset})
    queue, store = open_queue(settings, "analytics"), open_store(settings)
    assert isinstance(queue, SQSQueue) and isinstance(store, DynamoDBStore)

    bodies = [(contract_dir / name).read_text() for name in CONTRACT]
    for body in [*bodies, bodies[0]]:  # the first one twice: a producer retry
        event = parse_event(body)
        queue.send(body, group_id=event.group_id, dedup_id=event.dedup_id)
    queue.send("{not json", group_id="s-poison", dedup_id="poison")

    stats = Worker(queue, store, wait_seconds=0).run(drain=True)

    counts = store.counts()
    assert counts.interactions[InteractionStatus.ANSWERED] == counts.total_interactions == 2
    assert counts.pending_queries == counts.pending_responses == 0
    legacy = store.get_interaction(parse_event(bodies[3]).correlation_id)
    assert legacy is not None and legacy.match_score == 62.0
    assert stats.dead_lettered == 1
    assert queue.dead_letter_queue is not None
    (dead,) = queue.dead_letter_queue.receive(10)
    assert dead.body == "{not json" and "JSON" in dead.attributes[FAILURE_REASON_ATTRIBUTE]
