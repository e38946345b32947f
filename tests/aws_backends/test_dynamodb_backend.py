"""What is specific to the DynamoDB store: concurrency without transactions, lazy TTL, items, requests.

The shared correlation semantics are in tests/stores/, which runs against this backend too.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest

from cv_analytics.boto.metering import RequestCounter
from cv_analytics.clock import ManualClock
from cv_analytics.wiring import Settings, open_store
from cv_analytics.events import EventType, QueryEvent, ResponseEvent
from cv_analytics.exceptions import StoreError, StoreUnavailableError
from cv_analytics.stores.dynamodb import DynamoDBStore
from cv_analytics.stores.models import InteractionStatus, RecordOutcome, ReportDelivery
from tests.aws_backends.moto_envs import TcpProxy, create_tables
from tests.moto_server import REGION

TS = 1_763_164_800_000  # 2025-11-15, ISO week 2025-W46


def query(cid: str, text: str = "Does she know Python?", ts: int = TS) -> QueryEvent:
    return QueryEvent(correlation_id=cid, timestamp=ts, session_id="s-1", query=text)


def response(cid: str, text: str = "Yes, eight years of it.", ts: int = TS + 250) -> ResponseEvent:
    return ResponseEvent.model_validate(
        {
            "correlationId": cid,
            "timestamp": ts,
            "sessionId": "s-1",
            "response": text,
            "performance": {"totalTime": 250.5, "llmTime": 200, "retrievalTime": 50, "cacheHit": False},
            "metadata": {"matchQuality": 0.91, "sourcesUsed": ["Python", "Django"]},
        }
    )


@pytest.fixture
def second_store(dynamodb_store: DynamoDBStore, moto_reset: str, clock: ManualClock) -> Iterator[DynamoDBStore]:
    """Another writer on the same tables, with a client of its own: a second Lambda invocation."""
    store = DynamoDBStore(
        {"events": dynamodb_store.events_table, "interactions": dynamodb_store.interactions_table,
         "reports": dynamodb_store.reports_table},
        endpoint_url=moto_reset, region=REGION, clock=clock, pending_ttl_seconds=3600,
    )  # fmt: skip
    yield store
    store.close()


def pause_before_first(store: DynamoDBStore, operation: str) -> tuple[threading.Event, threading.Event]:
    """Hold ``store``'s first ``operation`` call until released: returns (paused, release)."""
    paused, release = threading.Event(), threading.Event()

    def hold(**_: Any) -> None:
        if not paused.is_set():
            paused.set()
            assert release.wait(30), "the test never released the paused writer"

    store.client.meta.events.register(f"before-call.dynamodb.{operation}", hold)
    return paused, release


def fail_first(store: DynamoDBStore, operation: str) -> None:
    """Make ``store``'s first ``operation`` call fail as a dropped connection would."""
    failed = threading.Event()

    def drop(**_: Any) -> None:
        if not failed.is_set():
            failed.set()
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://dynamodb")

    store.client.meta.events.register(f"before-call.dynamodb.{operation}", drop)


def record_in_thread(store: DynamoDBStore, events: list[Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.extend(store.record_events(events))
        except Exception as exc:  # handed to the test thread
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


# -- concurrency -------------------------------------------------------------------


def test_halves_racing_past_each_others_reads_still_make_one_interaction(dynamodb_store, second_store, counter):
    # The race a load-then-save loses: both writers read "no counterpart" before either writes.
    paused, release = pause_before_first(dynamodb_store, "UpdateItem")
    thread, first = record_in_thread(dynamodb_store, [query("c1")])
    assert paused.wait(30)  # the query's writer has read, and not written

    assert second_store.record_events([response("c1")]) == [RecordOutcome.PENDING]
    release.set()
    thread.join(30)

    assert first == [RecordOutcome.CORRELATED]  # its write showed it the response: it completes the pair
    interaction = dynamodb_store.get_interaction("c1")
    assert interaction is not None and interaction.status is InteractionStatus.ANSWERED
    assert interaction.query == "Does she know Python?" and interaction.response == "Yes, eight years of it."
    assert dynamodb_store.get_pending("c1") == {}
    assert counter.calls_to("dynamodb", "BatchGetItem") == 2  # it read again after finding the state changed


def test_a_writer_that_stopped_after_seeing_both_halves_is_completed_by_the_redelivery(dynamodb_store, second_store):
    paused, release = pause_before_first(dynamodb_store, "UpdateItem")
    fail_first(dynamodb_store, "PutItem")  # it dies just before creating the interaction
    thread, first = record_in_thread(dynamodb_store, [query("c1")])
    assert paused.wait(30)
    second_store.record_events([response("c1")])
    release.set()
    thread.join(30)
    assert len(first) == 1 and isinstance(first[0], StoreUnavailableError)
    assert set(dynamodb_store.get_pending("c1")) == {EventType.QUERY, EventType.RESPONSE}
    assert dynamodb_store.get_interaction("c1") is None

    # SQS delivers the query again: the pair is completed, once
    assert dynamodb_store.record_events([query("c1")]) == [RecordOutcome.CORRELATED]
    assert second_store.record_events([response("c1")]) == [RecordOutcome.DUPLICATE]
    assert dynamodb_store.get_interaction("c1").status is InteractionStatus.ANSWERED
    assert dynamodb_store.get_pending("c1") == {}


def test_the_sweep_completes_a_pair_whose_writer_stopped_and_counts_it_as_neither_orphan(
    dynamodb_store, second_store, clock
):
    paused, release = pause_before_first(dynamodb_store, "UpdateItem")
    fail_first(dynamodb_store, "PutItem")
    thread, _ = record_in_thread(dynamodb_store, [query("c1")])
    assert paused.wait(30)
    second_store.record_events([response("c1")])
    release.set()
    thread.join(30)

    clock.advance(1000)
    swept = dynamodb_store.sweep_orphans(600)

    assert swept.total == 0
    assert dynamodb_store.get_interaction("c1").status is InteractionStatus.ANSWERED
    assert dynamodb_store.counts().pending_queries == dynamodb_store.counts().pending_responses == 0


def test_two_writers_recording_opposite_halves_at_once_make_exactly_one_interaction_each(moto_reset, clock):
    # Two threads, each its own client, interleaving freely; each request atomic, as DynamoDB
    # makes every single-item write (moto does not: the proxy serializes its requests).
    proxy = TcpProxy(moto_reset, serialize=True)
    tables = create_tables(moto_reset)
    stores = [
        DynamoDBStore(tables, endpoint_url=proxy.url, region=REGION, clock=clock, pending_ttl_seconds=3600)
        for _ in range(2)
    ]
    ids = [f"c{i:03}" for i in range(60)]
    start = threading.Barrier(2)
    outcomes: dict[str, list[RecordOutcome]] = {}
    errors: list[BaseException] = []

    def writer(store: DynamoDBStore, make: Any, name: str) -> None:
        try:
            start.wait(10)
            got: list[RecordOutcome] = []
            for i in range(0, len(ids), 10):  # Lambda batches of ten
                got += store.record_events([make(cid) for cid in ids[i : i + 10]])
            outcomes[name] = got
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(stores[0], query, "queries")),
        threading.Thread(target=writer, args=(stores[1], response, "responses")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    proxy.close()

    assert not errors, errors
    for n, cid in enumerate(ids):
        pair = Counter([outcomes["queries"][n], outcomes["responses"][n]])
        assert pair == Counter([RecordOutcome.PENDING, RecordOutcome.CORRELATED]), (cid, pair)
    direct = DynamoDBStore(tables, endpoint_url=moto_reset, region=REGION, clock=clock)
    counts = direct.counts()
    assert counts.interactions[InteractionStatus.ANSWERED] == counts.total_interactions == len(ids)
    assert counts.pending_queries == counts.pending_responses == 0
    for store in (*stores, direct):
        store.close()


def test_a_sweep_racing_with_the_late_response_counts_the_query_once(dynamodb_store, second_store, clock):
    dynamodb_store.record_events([query("c1")])
    clock.advance(1000)
    # the sweep reads the lone query, then the response completes the pair before the sweep writes
    paused, release = pause_before_first(dynamodb_store, "PutItem")
    thread = threading.Thread(target=lambda: dynamodb_store.sweep_orphans(600))
    thread.start()
    assert paused.wait(30)
    assert second_store.record_events([response("c1")]) == [RecordOutcome.CORRELATED]
    release.set()
    thread.join(30)

    interaction = dynamodb_store.get_interaction("c1")
    assert interaction is not None and interaction.status is InteractionStatus.ANSWERED
    assert dynamodb_store.counts().total_interactions == 1


# -- TTL, items, requests ------------------------------------------------------------


def test_expired_items_that_dynamodb_has_not_deleted_yet_are_ignored(dynamodb_store, clock, moto_reset):
    dynamodb_store.record_events([query("old")])
    clock.advance(3601)  # past the store's 1 h TTL; DynamoDB deletes lazily (moto never does)
    raw = boto3.client("dynamodb", endpoint_url=moto_reset, region_name=REGION)
    item = raw.get_item(TableName=dynamodb_store.events_table, Key={"requestId": {"S": "old"}})["Item"]
    assert int(item["ttl"]["N"]) * 1000 <= clock.now() * 1000  # expired, still there

    assert dynamodb_store.get_pending("old") == {}
    assert dynamodb_store.counts().pending_queries == 0
    assert dynamodb_store.sweep_orphans(0).total == 0
    assert dynamodb_store.record_events([response("old")]) == [RecordOutcome.PENDING]

    assert dynamodb_store.purge_expired() == 1
    item = raw.get_item(TableName=dynamodb_store.events_table, Key={"requestId": {"S": "old"}})["Item"]
    assert "query" not in item and "response" in item  # the expired half went, the live one stayed


def test_a_query_and_response_of_200_kib_each_fit_one_item_compressed(dynamodb_store):
    long_query = "Tell me about distributed systems. " * 6000  # ~200 KiB
    long_answer = "She designed event pipelines on SQS and DynamoDB. " * 4000
    dynamodb_store.record_events([query("big", text=long_query)])
    assert dynamodb_store.get_pending("big")[EventType.QUERY].event.query == long_query

    assert dynamodb_store.record_events([response("big", text=long_answer)]) == [RecordOutcome.CORRELATED]

    interaction = dynamodb_store.get_interaction("big")
    assert interaction is not None and (interaction.query, interaction.response) == (long_query, long_answer)


def test_interactions_round_trip_every_field(dynamodb_store):
    dynamodb_store.record_events([query("c1"), response("c1")])

    interaction = dynamodb_store.get_interaction("c1")

    assert interaction is not None
    assert (interaction.total_time, interaction.llm_time, interaction.cache_hit) == (250.5, 200, False)
    assert (interaction.match_quality, interaction.match_score) == (0.91, 91.0)
    assert interaction.sources_used == ["Python", "Django"]
    assert (interaction.week, interaction.timestamp, interaction.session_id) == ("2025-W46", TS, "s-1")


def test_the_hot_path_costs_one_batch_read_and_one_write_per_id(dynamodb_store, counter: RequestCounter):
    ids = [f"c{i}" for i in range(10)]
    before = counter.snapshot()
    dynamodb_store.record_events([query(c) for c in ids])
    queries = counter.snapshot() - before

    before = counter.snapshot()
    dynamodb_store.record_events([response(c) for c in ids])
    responses = counter.snapshot() - before

    assert queries.calls == {("dynamodb", "BatchGetItem"): 1, ("dynamodb", "UpdateItem"): 10}
    assert responses.calls == {
        ("dynamodb", "BatchGetItem"): 1,
        ("dynamodb", "PutItem"): 10,
        ("dynamodb", "BatchWriteItem"): 1,  # the ten pending items, deleted in one request
    }
    assert responses.capacity_units[dynamodb_store.interactions_table] > 0


def test_a_week_is_read_from_the_week_index_not_a_scan(dynamodb_store, counter):
    dynamodb_store.record_events([query("b", ts=TS + 5), response("b"), query("a", ts=TS + 5), response("a")])
    dynamodb_store.record_events([query("c", ts=TS + 7 * 86_400_000), response("c")])
    before = counter.snapshot()

    week = [i.correlation_id for i in dynamodb_store.iter_interactions("2025-W46")]

    assert week == ["a", "b"]  # equal timestamps: by id, as the embedded store orders them
    assert (counter.snapshot() - before).calls == {("dynamodb", "Query"): 1}


def test_report_deliveries_are_kept_per_week_and_recipient(dynamodb_store):
    delivery = ReportDelivery("2025-W46", "owner@example.com", "ses", TS)
    assert dynamodb_store.get_report_delivery("2025-W46", "owner@example.com") is None

    dynamodb_store.record_report_delivery(delivery)

    assert dynamodb_store.get_report_delivery("2025-W46", "owner@example.com") == delivery
    assert dynamodb_store.get_report_delivery("2025-W46", "other@example.com") is None


# -- configuration and errors ------------------------------------------------------------


def test_settings_name_the_tables_and_the_endpoint(moto_reset, clock):
    tables = create_tables(moto_reset, prefix="cv-analytics-staging")
    env = {
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_reset,
        "CV_ANALYTICS_EVENTS_TABLE": tables["events"],
        "CV_ANALYTICS_INTERACTIONS_TABLE": tables["interactions"],
        "CV_ANALYTICS_REPORTS_TABLE": tables["reports"],
        "CV_ANALYTICS_PENDING_TTL": "60",
    }
    settings = Settings.from_env(env)

    store = open_store(settings, clock=clock)

    assert settings.store_url == "dynamodb://"
    assert isinstance(store, DynamoDBStore)
    assert (store.events_table, store.interactions_table) == (
        "cv-analytics-staging-query-events",
        "cv-analytics-staging-analytics",
    )
    store.record_events([query("c1")])
    assert store.get_pending("c1")[EventType.QUERY].expires_at - store.get_pending("c1")[EventType.QUERY].received_at == 60_000


def test_an_unreachable_endpoint_raises_store_unavailable(closed_port_url, clock):
    store = DynamoDBStore(endpoint_url=closed_port_url, region=REGION, clock=clock, max_attempts=1)
    with pytest.raises(StoreUnavailableError, match="retry later"):
        store.record_events([query("c1")])
    with pytest.raises(StoreUnavailableError):
        store.get_interaction("c1")
    store.close()


def test_a_missing_table_is_a_store_error_that_says_to_bootstrap(moto_reset, clock):
    store = DynamoDBStore({"events": "nope", "interactions": "nope-either"}, endpoint_url=moto_reset, region=REGION, clock=clock)  # fmt: skip
    with pytest.raises(StoreError, match="bootstrap") as raised:
        store.record_events([query("c1")])
    assert not isinstance(raised.value, StoreUnavailableError)  # retrying will not create the table
    store.close()
