"""``POST /v1/events``: contract messages in, interactions out; bad events cost only themselves."""

from __future__ import annotations

import json
import sqlite3

import pytest

from cv_analytics.queues.base import MAX_MESSAGE_BYTES
from cv_analytics.stores.models import InteractionStatus

CURRENT_ID = "6f1c2d8e-6a43-4c59-9a7e-2b1d3c4e5f60"
LEGACY_ID = "0b9e4f7a-1c2d-4e3f-8a9b-7c6d5e4f3a21"


def _contract(contract_dir, name):
    return json.loads((contract_dir / name).read_text())


@pytest.fixture
def queries(contract_dir):
    return [_contract(contract_dir, "query-event.json"), _contract(contract_dir, "legacy-query-event.json")]


@pytest.fixture
def responses(contract_dir):
    return [_contract(contract_dir, "response-event.json"), _contract(contract_dir, "legacy-response-event.json")]


@pytest.mark.parametrize("order", ["queries_first", "responses_first"])
@pytest.mark.parametrize("batched", [True, False], ids=["one_batch", "one_request_each"])
def test_each_contract_message_ends_as_one_interaction_in_either_order(
    client, auth, drain, wiring, queries, responses, order, batched
):
    events = queries + responses if order == "queries_first" else responses + queries
    if batched:
        reply = client.post("/v1/events", json=events, headers=auth)
        assert reply.status_code == 202, reply.text
        assert reply.json()["accepted"] == 4
    else:
        for event in events:
            reply = client.post("/v1/events", json=event, headers=auth)
            assert reply.status_code == 202, reply.text
            assert reply.json()["results"][0]["status"] == "accepted"
    drain()

    interactions = {i.correlation_id: i for i in wiring.store.iter_interactions()}
    assert set(interactions) == {CURRENT_ID, LEGACY_ID}
    current, legacy = interactions[CURRENT_ID], interactions[LEGACY_ID]
    assert current.status is InteractionStatus.ANSWERED and current.session_id == "session-001"
    assert current.query == "What is your experience with TypeScript?" and current.total_time == 234
    assert current.sources_used == ["TypeScript", "Node.js", "Express"]
    assert current.user_agent == "Mozilla/5.0 (X11; Linux x86_64)"
    assert legacy.status is InteractionStatus.ANSWERED and (legacy.match_type.value, legacy.match_score) == ("partial", 62)


def test_duplicates_do_not_double_count(client, auth, drain, wiring, queries, responses):
    events = queries + responses
    assert client.post("/v1/events", json=events, headers=auth).status_code == 202
    again = client.post("/v1/events", json=events, headers=auth)
    assert again.status_code == 202
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 4
    drain()
    # after the worker took them, a resend (a producer's retry) is recorded once all the same
    assert client.post("/v1/events", json=events[::-1], headers=auth).status_code == 202
    drain()

    assert sorted(i.correlation_id for i in wiring.store.iter_interactions()) == sorted([CURRENT_ID, LEGACY_ID])
    assert wiring.store.counts().pending_queries == wiring.store.counts().pending_responses == 0


def test_a_partly_bad_batch_enqueues_the_good_events_and_reports_each_bad_one(client, auth, drain, wiring, queries, responses):
    bad_timestamp = {**queries[0], "correlationId": "c-bad-ts", "timestamp": "yesterday"}
    unknown_type = {**queries[0], "correlationId": "c-unknown", "eventType": "click"}
    batch = [queries[0], bad_timestamp, "not an event", responses[0], unknown_type, {"eventType": "query"}]

    reply = client.post("/v1/events", json=batch, headers=auth)

    assert reply.status_code == 207
    body = reply.json()
    assert (body["accepted"], body["rejected"]) == (2, 4)
    results = {r["index"]: r for r in body["results"]}
    assert [results[i]["status"] for i in range(6)] == ["accepted", "rejected", "rejected", "accepted", "rejected", "rejected"]
    assert results[1]["field"] == "timestamp" and "timestamp" in results[1]["error"]
    assert "must be a JSON object" in results[2]["error"]
    assert results[4]["field"] == "eventType"
    assert results[5]["field"] == "correlationId"
    drain()
    [interaction] = list(wiring.store.iter_interactions())
    assert interaction.correlation_id == CURRENT_ID and interaction.status is InteractionStatus.ANSWERED


def test_an_optional_field_out_of_range_is_dropped_and_named(client, auth, responses):
    event = {**responses[0], "metadata": {**responses[0]["metadata"], "matchQuality": 7}}
    reply = client.post("/v1/events", json=event, headers=auth)
    assert reply.status_code == 202
    assert reply.json()["results"][0]["droppedFields"] == ["metadata.matchQuality"]


def test_a_batch_of_only_bad_events_is_422_naming_the_field(client, auth, queries):
    reply = client.post("/v1/events", json={**queries[0], "timestamp": -5}, headers=auth)
    assert reply.status_code == 422
    assert "timestamp" in reply.json()["detail"]
    reply = client.post("/v1/events", json=[{"eventType": "query"}, 1], headers=auth)
    assert reply.status_code == 422 and reply.json()["rejected"] == 2


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b'"a string"', "one event (a JSON object) or a batch"),
        (b"[]", "empty"),
        (json.dumps([{}] * 11).encode(), "at most 10"),
        (b"[" * 100_000, "nested too deeply"),
        (b"\xff\xfe", "not valid JSON"),
    ],
    ids=["malformed", "scalar", "empty_batch", "eleven", "deep_brackets", "not_utf8"],
)
def test_a_body_that_is_not_an_event_or_a_batch_is_400_saying_why(client, auth, body, says):
    reply = client.post("/v1/events", content=body, headers={**auth, "content-type": "application/json"})
    assert reply.status_code == 400
    assert says in reply.json()["detail"]


def test_deeply_nested_json_is_refused_not_a_500(client, auth, queries):
    nested: object = "x"
    for _ in range(40):
        nested = {"a": nested}
    reply = client.post("/v1/events", json={**queries[0], "metadata": nested}, headers=auth)
    assert reply.status_code == 422
    assert "deeper" in reply.json()["detail"] or "nested" in reply.json()["detail"]


def test_no_or_a_wrong_api_key_is_401_and_nothing_is_enqueued(client, wiring, queries):
    assert client.post("/v1/events", json=queries[0]).status_code == 401
    reply = client.post("/v1/events", json=queries[0], headers={"x-api-key": "guess"})
    assert reply.status_code == 401 and reply.headers["www-authenticate"] == "x-api-key"
    assert wiring.queue().attributes().visible == 0


def test_a_body_over_the_limit_is_413(client, auth, queries):
    huge = {**queries[0], "query": "x" * MAX_MESSAGE_BYTES}
    too_big = json.dumps([huge] * 11)  # over ten events' worth
    assert client.post("/v1/events", content=too_big, headers={**auth, "content-type": "application/json"}).status_code == 413


def test_one_event_over_256_kib_in_a_batch_is_rejected_by_index(client, auth, queries, responses):
    huge = {**queries[0], "correlationId": "c-huge", "query": "x" * MAX_MESSAGE_BYTES}
    reply = client.post("/v1/events", json=[huge, responses[0]], headers=auth)
    assert reply.status_code == 207
    first, second = reply.json()["results"]
    assert first["status"] == "rejected" and "limit" in first["error"]
    assert second["status"] == "accepted"


def test_queue_unavailable_is_503_with_retry_after_and_a_resend_is_safe(client, auth, drain, wiring, settings, queries, responses):
    wiring.queue().attributes()  # the queue database exists before it is locked
    locker = sqlite3.connect(settings.data_dir / "queues.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # no writer gets in: the queue is unreachable (after its busy timeout)
    try:
        reply = client.post("/v1/events", json=queries + responses, headers=auth)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert reply.status_code == 503
    assert reply.headers["retry-after"].isdigit()
    assert {r["status"] for r in reply.json()["results"]} == {"unavailable"}
    assert "resend" in reply.json()["detail"]

    assert client.post("/v1/events", json=queries + responses, headers=auth).status_code == 202
    drain()
    assert len(list(wiring.store.iter_interactions())) == 2
