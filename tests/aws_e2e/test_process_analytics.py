"""The analytics processor Lambda on moto: the real client sends to SQS, an event source mapping
driven by hand invokes ``process_analytics`` with Lambda's exact event, DynamoDB holds the result."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from cv_analytics.entrypoints import aws_lambda as handlers
from cv_analytics.boto.metering import RequestCounter
from cv_analytics.clock import ManualClock
from cv_analytics.wiring import open_store
from cv_analytics.events import MatchType, parse_event
from cv_analytics.exceptions import QueueNotFoundError
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE, RECEIVE_COUNT_ATTRIBUTE, SOURCE_QUEUE_ATTRIBUTE
from cv_analytics.stores.models import InteractionStatus

from . import iam
from .conftest import Deployment
from .lambda_poller import LambdaContext

pytestmark = pytest.mark.slow

CONTRACT = ("query-event.json", "response-event.json", "legacy-query-event.json", "legacy-response-event.json")
#: Monday 16 November 2026, 09:00 UTC, in ms: the week 2026-W47
MONDAY_W47 = 1_795_338_000_000


def _send_raw(aws: Deployment, body: str, *, group: str, dedup: str) -> str:
    """Send a body as a producer other than our client would (boto3, its own ids)."""
    return str(
        aws.sqs.send_message(
            QueueUrl=aws.queue_url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedup
        )["MessageId"]
    )


def _send_event(aws: Deployment, body: str) -> str:
    event = parse_event(body)
    return _send_raw(aws, body, group=event.group_id, dedup=event.dedup_id)


def _query(cid: str, session: str, text: str = "Do you know TypeScript?") -> str:
    return json.dumps(
        {"eventType": "query", "correlationId": cid, "timestamp": MONDAY_W47, "sessionId": session, "query": text}
    )


def _response(cid: str, session: str) -> str:
    return json.dumps(
        {"eventType": "response", "correlationId": cid, "timestamp": MONDAY_W47 + 300, "sessionId": session,
         "response": "Yes, seven years.", "metadata": {"matchQuality": 0.9, "sourcesUsed": ["TypeScript"]}}
    )  # fmt: skip


def _log_lines(captured: str, message: str) -> list[dict]:
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == handlers.LOGGER_NAME and line["message"] == message]


def test_events_logged_by_the_client_become_interactions_in_dynamodb_through_the_handler(aws: Deployment) -> None:
    client = aws.analytics_client()
    pairs = [(str(uuid.uuid4()), f"session-{i % 4}") for i in range(12)]
    for i, (cid, session) in enumerate(pairs):
        client.log_query(
            f"Question {i} about TypeScript?", session_id=session, correlation_id=cid, timestamp=MONDAY_W47 + i
        )
        client.log_response(
            cid, f"Answer {i}", session_id=session, timestamp=MONDAY_W47 + i + 250, total_time=250, llm_time=200,
            retrieval_time=50, cache_hit=False, match_quality=0.9, sources_used=["TypeScript"],
        )  # fmt: skip
    assert client.flush(timeout=30)
    assert client.stats().sent == 24

    polls = aws.mapping().drain(handlers.process_analytics)

    assert [p.failed for p in polls] == [[] for _ in polls]
    assert sum(len(p.deleted) for p in polls) == 24
    assert aws.queue_counts(aws.queue_url) == (0, 0)
    store = open_store(aws.settings)
    counts = store.counts()
    assert counts.total_interactions == counts.interactions[InteractionStatus.ANSWERED] == 12
    assert counts.pending_queries == counts.pending_responses == 0
    cid, session = pairs[5]
    interaction = store.get_interaction(cid)
    assert interaction is not None
    assert (interaction.query, interaction.response, interaction.session_id) == (
        "Question 5 about TypeScript?",
        "Answer 5",
        session,
    )
    assert (interaction.week, interaction.total_time, interaction.match_type) == ("2026-W47", 250, MatchType.FULL)


@pytest.mark.parametrize(
    ("order", "batch_size"),
    [(CONTRACT, 10), (tuple(reversed(CONTRACT)), 1)],
    ids=["producer-order-one-batch", "responses-first-one-per-invocation"],
)
def test_the_contract_messages_become_one_interaction_per_pair_in_either_order(
    aws: Deployment, contract_dir, order: tuple[str, ...], batch_size: int
) -> None:
    bodies = {name: (contract_dir / name).read_text() for name in CONTRACT}
    for name in order:
        _send_event(aws, bodies[name])

    polls = aws.mapping(batch_size=batch_size).drain(handlers.process_analytics)

    assert sum(len(p.event["Records"]) for p in polls) == 4 and not [p for p in polls if p.failed]
    store = open_store(aws.settings)
    current = store.get_interaction(parse_event(bodies["query-event.json"]).correlation_id)
    legacy = store.get_interaction(parse_event(bodies["legacy-query-event.json"]).correlation_id)
    assert current is not None and legacy is not None
    assert current.status is legacy.status is InteractionStatus.ANSWERED
    assert (current.query, current.session_id, current.total_time) == (
        "What is your experience with TypeScript?", "session-001", 234,
    )  # fmt: skip
    assert current.sources_used == ["TypeScript", "Node.js", "Express"] and current.match_type is MatchType.FULL
    assert (legacy.query, legacy.match_type, legacy.match_score) == ("Python experience", MatchType.PARTIAL, 62.0)
    assert legacy.reasoning == "Python appears in two projects but not as a primary skill"
    assert store.counts().total_interactions == 2


def test_a_poison_message_ends_in_the_dead_letter_queue_with_its_reason_on_its_first_receive(aws: Deployment) -> None:
    poison_id = _send_raw(aws, "{not json", group="session-poison", dedup="poison-1")
    mapping = aws.mapping()

    poll = mapping.poll(handlers.process_analytics)

    assert poll is not None and poll.event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"
    assert poll.failed == [], "dead-lettered at once: never retried, so not reported failed"
    assert poll.deleted == [poison_id]  # Lambda's delete of a message moved already is refused, harmlessly
    assert mapping.poll(handlers.process_analytics) is None
    assert aws.queue_counts(aws.queue_url) == (0, 0)
    dead = aws.sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert [m["Body"] for m in dead] == ["{not json"]
    attributes = {name: value["StringValue"] for name, value in dead[0]["MessageAttributes"].items()}
    assert "not valid JSON" in attributes[FAILURE_REASON_ATTRIBUTE]
    assert attributes[RECEIVE_COUNT_ATTRIBUTE] == "1"
    assert attributes[SOURCE_QUEUE_ATTRIBUTE] == "cv-e2e-analytics.fifo"


def test_a_poison_group_head_is_dead_lettered_and_the_rest_of_its_group_is_recorded_in_the_same_batch(
    aws: Deployment, capsys
) -> None:
    held, free = str(uuid.uuid4()), str(uuid.uuid4())
    _send_raw(aws, '{"eventType": "query"}', group="session-a", dedup="a-0")
    _send_event(aws, _query(held, "session-a"))
    _send_event(aws, _response(held, "session-a"))
    _send_event(aws, _query(free, "session-b"))
    _send_event(aws, _response(free, "session-b"))
    mapping = aws.mapping()
    store = open_store(aws.settings)

    first = mapping.poll(handlers.process_analytics)

    assert first is not None and len(first.event["Records"]) == 5
    assert first.failed == []
    for cid in (held, free):
        interaction = store.get_interaction(cid)
        assert interaction is not None and interaction.status is InteractionStatus.ANSWERED
    [line] = _log_lines(capsys.readouterr().out, "processed analytics batch")
    assert (line["failed"], line["skipped"], line["succeeded"], line["deadLettered"]) == (0, 0, 4, 1)
    assert mapping.poll(handlers.process_analytics) is None
    assert aws.queue_counts(aws.dlq_url)[0] == 1


def test_a_malformed_record_fails_alone_and_the_rest_of_the_batch_is_recorded(aws: Deployment) -> None:
    good, other = str(uuid.uuid4()), str(uuid.uuid4())
    _send_event(aws, _query(good, "session-1"))
    _send_event(aws, _response(good, "session-1"))
    broken_id = _send_event(aws, _query(other, "session-2"))
    mapping = aws.mapping()
    messages = mapping.receive()
    event = mapping.event_of(messages)
    [broken] = [r for r in event["Records"] if r["messageId"] == broken_id]
    broken["attributes"]["ApproximateReceiveCount"] = "many"  # no record from Lambda looks like this

    answer = handlers.process_analytics(event, LambdaContext())

    assert answer == {"batchItemFailures": [{"itemIdentifier": broken_id}]}
    interaction = open_store(aws.settings).get_interaction(good)
    assert interaction is not None and interaction.status is InteractionStatus.ANSWERED


def test_a_warm_container_reuses_its_queue_and_store_clients(aws: Deployment, counter: RequestCounter) -> None:
    handlers.configure(env=aws.env, request_counter=counter)
    cid = str(uuid.uuid4())
    mapping = aws.mapping(batch_size=1)
    _send_event(aws, _query(cid, "session-1"))
    mapping.poll(handlers.process_analytics)
    cold = counter.snapshot()
    _send_event(aws, _response(cid, "session-1"))

    mapping.poll(handlers.process_analytics)

    warm = counter.snapshot() - cold
    assert cold.calls_to("sqs", "GetQueueAttributes") == 2, "the queue's and its dead-letter queue's, once"
    assert warm.calls_to("sqs") == 0, "a warm invocation asks SQS nothing: Lambda receives and deletes"
    assert warm.calls_to("dynamodb") > 0
    interaction = open_store(aws.settings).get_interaction(cid)
    assert interaction is not None and interaction.status is InteractionStatus.ANSWERED


def test_each_invocation_logs_one_json_line_with_its_counts(aws: Deployment, capsys) -> None:
    cid = str(uuid.uuid4())
    _send_event(aws, _query(cid, "session-1"))
    _send_event(aws, _response(cid, "session-1"))
    _send_event(aws, _query(str(uuid.uuid4()), "session-2"))
    poison = _send_raw(aws, "[]", group="session-3", dedup="poison")
    context = LambdaContext(aws_request_id="req-1")

    aws.mapping().poll(handlers.process_analytics, context)
    handlers.process_analytics({"Records": []}, LambdaContext(aws_request_id="req-2"))

    out = capsys.readouterr().out
    first, second = _log_lines(out, "processed analytics batch")
    assert first["requestId"] == "req-1" and first["coldStart"] is True and second["coldStart"] is False
    assert {k: first[k] for k in ("records", "succeeded", "correlated", "pending", "failed", "batchItemFailures")} == {
        "records": 4, "succeeded": 3, "correlated": 1, "pending": 2, "failed": 0, "batchItemFailures": 0,
    }  # fmt: skip
    assert first["deadLettered"] == 1
    assert first["level"] == "INFO" and isinstance(first["durationMs"], float)
    [failure] = _log_lines(out, "analytics message not processed")
    assert failure["messageId"] == poison and "JSON object" in failure["reason"] and failure["level"] == "WARNING"
    assert failure["status"] == "dead_lettered"


def test_the_orphan_sweep_turns_a_query_that_waited_too_long_into_an_unanswered_interaction(
    aws: Deployment, capsys
) -> None:
    clock = ManualClock()
    handlers.configure(
        env={**aws.env, "CV_ANALYTICS_SWEEP_INTERVAL": "300", "CV_ANALYTICS_ORPHAN_TIMEOUT": "900"}, clock=clock
    )
    lonely, late = str(uuid.uuid4()), str(uuid.uuid4())
    mapping = aws.mapping()
    _send_event(aws, _query(lonely, "session-1"))
    mapping.poll(handlers.process_analytics)  # a container's first invocation sweeps (nothing is old yet)
    clock.advance(200)
    _send_event(aws, _query(late, "session-2"))
    mapping.poll(handlers.process_analytics)  # no sweep: the last one was 200 s ago
    clock.advance(1000)
    _send_event(aws, _response(late, "session-2"))

    mapping.poll(handlers.process_analytics)  # due: after the batch, so the late response still correlates

    sweeps = [line.get("swept") for line in _log_lines(capsys.readouterr().out, "processed analytics batch")]
    assert sweeps == [{"unanswered": 0, "orphanResponses": 0}, None, {"unanswered": 1, "orphanResponses": 0}]
    store = open_store(aws.settings, clock=clock)
    unanswered, answered = store.get_interaction(lonely), store.get_interaction(late)
    assert unanswered is not None and unanswered.status is InteractionStatus.UNANSWERED
    assert answered is not None and answered.status is InteractionStatus.ANSWERED


def test_the_processor_needs_only_what_its_iam_role_grants(aws: Deployment, counter: RequestCounter) -> None:
    handlers.configure(env=aws.env, request_counter=counter)
    cid = str(uuid.uuid4())
    _send_event(aws, _query(cid, "session-1"))
    _send_event(aws, _response(cid, "session-1"))
    _send_raw(aws, "{not json", group="session-2", dedup="poison")
    mapping = aws.mapping()

    mapping.poll(handlers.process_analytics)  # the poison message reaches the dead-letter queue; the first invocation also sweeps

    used = iam.actions_used(counter.snapshot())
    assert {"sqs:SendMessage", "dynamodb:Scan", "dynamodb:BatchGetItem"} <= used, "dead-lettering and sweeping happened"
    assert used <= iam.granted_actions("ProcessorRole"), (
        f"not granted: {sorted(used - iam.granted_actions('ProcessorRole'))}"
    )


@pytest.mark.slow
def test_importing_the_handlers_is_cheap_and_creates_no_clients() -> None:
    code = (
        "import sys, cv_analytics.entrypoints.aws_lambda as h; "
        "print(sorted(m for m in ('boto3', 'botocore', 'pydantic') if m in sys.modules), *h.warm.is_cold())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["[]", "True", "True"]


def test_a_batch_from_a_queue_that_cannot_be_opened_fails_whole_and_says_why(aws: Deployment, capsys) -> None:
    mapping = aws.mapping()
    _send_event(aws, _query(str(uuid.uuid4()), "session-1"))
    event = mapping.event_of(mapping.receive())
    for record in event["Records"]:  # as if the mapping pointed at a queue deleted since
        record["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:cv-e2e-gone.fifo"

    with pytest.raises(QueueNotFoundError, match="cv-analytics aws bootstrap"):
        handlers.process_analytics(event, LambdaContext(aws_request_id="req-9"))

    [line] = _log_lines(capsys.readouterr().out, "analytics batch not processed; Lambda will retry the whole batch")
    assert line["level"] == "ERROR" and line["requestId"] == "req-9" and "does not exist" in line["error"]
    assert "exception" not in line, "an error we raise on purpose explains itself without a traceback"


def test_a_5000_deep_body_among_200_good_messages_is_dead_lettered_on_its_first_receive(aws: Deployment) -> None:
    pairs = [(str(uuid.uuid4()), f"session-{i % 3}") for i in range(100)]
    bodies = [b for cid, session in pairs for b in (_query(cid, session), _response(cid, session))]
    depth = 5_000
    deep_body = (
        '{"eventType":"query","correlationId":"deep","timestamp":%d,"sessionId":"session-1","query":"q",'
        '"metadata":{"a":%s%s}}' % (MONDAY_W47, "[" * depth, "]" * depth)
    )
    for body in bodies[:101]:
        _send_event(aws, body)
    deep_id = _send_raw(aws, deep_body, group="session-1", dedup="deep")
    for body in bodies[101:]:
        _send_event(aws, body)

    polls = aws.mapping().drain(handlers.process_analytics)

    assert [p.failed for p in polls] == [[] for _ in polls]
    store = open_store(aws.settings)
    assert store.counts().interactions[InteractionStatus.ANSWERED] == 100
    dead = aws.sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    [message] = dead["Messages"]
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert message["Body"] == deep_body and attributes[RECEIVE_COUNT_ATTRIBUTE] == "1"
    assert "deep" in attributes[FAILURE_REASON_ATTRIBUTE].lower()
    assert deep_id in [p.event["Records"][i]["messageId"] for p in polls for i in range(len(p.event["Records"]))]


def test_a_poison_message_and_a_store_outage_in_one_session_lose_no_good_event(aws: Deployment, monkeypatch) -> None:
    from cv_analytics.exceptions import StoreUnavailableError

    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    _send_event(aws, _query(first, "session-1"))
    _send_raw(aws, "{not json", group="session-1", dedup="poison")
    _send_event(aws, _response(first, "session-1"))
    _send_event(aws, _query(second, "session-1"))
    _send_event(aws, _response(second, "session-1"))
    mapping = aws.mapping(visibility_timeout=1)
    store = handlers.warm.processor_state().store
    real, calls = store.record_events, {"n": 0}

    def down_once(events):
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreUnavailableError("DynamoDB is throttling; retry later")
        return real(events)

    monkeypatch.setattr(store, "record_events", down_once)

    outage = mapping.poll(handlers.process_analytics)
    assert outage is not None and len(outage.failed) == 4, "the four good messages are retried, the poison is not"
    time.sleep(1.2)  # their visibility timeout: Lambda's natural backoff
    mapping.drain(handlers.process_analytics)

    for cid in (first, second):
        interaction = open_store(aws.settings).get_interaction(cid)
        assert interaction is not None and interaction.status is InteractionStatus.ANSWERED
    dead = aws.sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    assert [m["Body"] for m in dead["Messages"]] == ["{not json"], "nothing that could succeed was dead-lettered"
    assert dead["Messages"][0]["MessageAttributes"][RECEIVE_COUNT_ATTRIBUTE]["StringValue"] == "1"
