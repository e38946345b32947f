"""The jobs HTTP API through FastAPI's TestClient, on the embedded backends."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from cv_analytics.entrypoints.web import create_app
from cv_analytics.jobs import JobStatus

from .conftest import API_KEY, drain

KEY = {"x-api-key": API_KEY}


@pytest.fixture
def client(wiring) -> TestClient:
    with TestClient(create_app(wiring)) as test_client:
        yield test_client


def _submit(client, body=None, **headers):
    return client.post("/jobs", json=body or {"type": "test.echo", "input": {"value": "hi"}}, headers={**KEY, **headers})


def test_submit_answers_202_with_the_job_and_its_location(client, wiring):
    response = _submit(client)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["type"] == "test.echo" and body["attempts"] == 0
    assert response.headers["location"] == f"/jobs/{body['jobId']}"
    drain(wiring)
    done = client.get(response.headers["location"], headers=KEY).json()
    assert done["status"] == "succeeded" and done["result"] == {"echo": "hi", "attempt": 1}
    assert done["createdAt"].endswith("Z") and done["finishedAt"] is not None


def test_the_same_idempotency_key_and_body_return_the_same_job_and_another_body_a_409(client, wiring):
    first = _submit(client, **{"Idempotency-Key": "order-1"})
    again = _submit(client, **{"Idempotency-Key": "order-1"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["jobId"] == first.json()["jobId"]
    assert again.headers["location"] == first.headers["location"]
    other = _submit(client, {"type": "test.echo", "input": {"value": "other"}}, **{"Idempotency-Key": "order-1"})
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    assert len(client.get("/jobs", headers=KEY).json()["jobs"]) == 1
    assert _submit(client, **{"Idempotency-Key": "order-2"}).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "no.such.type", "input": {}}, ["body", "type"]),
        ({"type": "test.echo", "input": {}}, ["body", "input", "value"]),
        ({"type": "test.echo", "input": {"value": "x", "sleep": -1}}, ["body", "input", "sleep"]),
        ({"type": "test.echo", "input": {"value": "x", "extra": 1}}, ["body", "input", "extra"]),
        ({"type": "test.echo", "input": "not an object"}, ["body", "input"]),
        ({"input": {}}, ["body", "type"]),
        ({"type": "test.echo", "input": {}, "surprise": True}, ["body", "surprise"]),
    ],
)
def test_an_unknown_type_or_bad_input_is_a_422_naming_the_field_and_no_job(client, body, field):
    response = _submit(client, body)
    assert response.status_code == 422
    assert field in [error["loc"] for error in response.json()["detail"]]
    assert client.get("/jobs", headers=KEY).json()["jobs"] == []


@pytest.mark.parametrize("content", [b"{not json", b"", b"[]", b"null", "{\"type\": \"t\xe9\"".encode("latin-1")])
def test_a_malformed_body_is_a_422(client, content):
    response = client.post("/jobs", content=content, headers={**KEY, "content-type": "application/json"})
    assert response.status_code == 422


def test_a_body_over_256_kib_is_a_413(client):
    big = {"type": "test.echo", "input": {"value": "x" * (257 * 1024)}}
    assert _submit(client, big).status_code == 413
    chunks = (b"x" * 65536 for _ in range(5))  # streamed, no Content-Length
    assert client.post("/jobs", content=chunks, headers={**KEY, "content-type": "application/json"}).status_code == 413


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/jobs"), ("get", "/jobs"), ("get", "/jobs/some-id"), ("post", "/jobs/some-id/cancel")],
)
@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-api-key": ""}])
def test_every_route_needs_the_api_key(client, method, path, headers):
    response = client.request(method, path, headers=headers, json={"type": "test.echo", "input": {"value": "x"}})
    assert response.status_code == 401


def test_an_unknown_job_is_a_404(client):
    assert client.get("/jobs/no-such-job", headers=KEY).status_code == 404
    assert client.post("/jobs/no-such-job/cancel", headers=KEY).status_code == 404


def test_etag_and_if_none_match_answer_304_until_the_job_changes(client, wiring):
    location = _submit(client).headers["location"]
    first = client.get(location, headers=KEY)
    etag = first.headers["etag"]
    unchanged = client.get(location, headers={**KEY, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag
    assert client.get(location, headers={**KEY, "If-None-Match": f'W/{etag}, "other"'}).status_code == 304
    drain(wiring)
    changed = client.get(location, headers={**KEY, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag and changed.json()["status"] == "succeeded"


def test_wait_returns_as_soon_as_the_status_changes(client, wiring):
    job_id = _submit(client).json()["jobId"]
    threading.Timer(0.3, lambda: wiring.job_service().cancel(job_id)).start()
    started = time.monotonic()
    response = client.get(f"/jobs/{job_id}?wait=20", headers=KEY)
    assert response.json()["status"] == "cancelled"
    assert time.monotonic() - started < 15  # woken by the change, not by the 20 s


def test_wait_sees_a_change_made_by_another_process(client, make_wiring):
    job_id = _submit(client).json()["jobId"]
    elsewhere = make_wiring()  # its own store connection: no in-process news, only the store says so
    threading.Timer(0.3, lambda: elsewhere.job_store.cancel(job_id)).start()
    started = time.monotonic()
    assert client.get(f"/jobs/{job_id}?wait=20", headers=KEY).json()["status"] == "cancelled"
    assert time.monotonic() - started < 15


def test_wait_with_an_etag_answers_304_when_nothing_changed_in_time(client):
    location = _submit(client).headers["location"]
    etag = client.get(location, headers=KEY).headers["etag"]
    response = client.get(f"{location}?wait=0.3", headers={**KEY, "If-None-Match": etag})
    assert response.status_code == 304


@pytest.mark.parametrize("wait", ["-1", "21", "soon"])
def test_a_wait_outside_0_to_20_seconds_is_a_422(client, wait):
    job_id = _submit(client).json()["jobId"]
    assert client.get(f"/jobs/{job_id}?wait={wait}", headers=KEY).status_code == 422


def test_list_is_newest_first_paginated_by_cursor_and_filtered(client, wiring):
    ids = [_submit(client, {"type": "test.echo", "input": {"value": str(i)}}).json()["jobId"] for i in range(5)]
    client.post(f"/jobs/{ids[0]}/cancel", headers=KEY)
    seen, cursor = [], None
    while True:
        page = client.get("/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=KEY).json()
        seen += [job["jobId"] for job in page["jobs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    cancelled = client.get("/jobs", params={"status": "cancelled"}, headers=KEY).json()["jobs"]
    assert [job["jobId"] for job in cancelled] == [ids[0]]
    assert client.get("/jobs", params={"type": "test.fail"}, headers=KEY).json()["jobs"] == []
    for bad in ({"status": "sleeping"}, {"limit": 0}, {"limit": 101}, {"cursor": "garbage"}):
        assert client.get("/jobs", params=bad, headers=KEY).status_code == 422


def test_cancel_in_each_state(client, wiring):
    queued = _submit(client).json()["jobId"]
    response = client.post(f"/jobs/{queued}/cancel", headers=KEY)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(f"/jobs/{queued}/cancel", headers=KEY).status_code == 200  # again: still cancelled

    running = _submit(client, {"type": "test.slow", "input": {"seconds": 30}}).json()["jobId"]
    store = wiring.job_store
    store.claim(running, "a-worker", 60)
    told = client.post(f"/jobs/{running}/cancel", headers=KEY)
    assert told.status_code == 202 and told.json()["status"] == "running" and told.json()["cancelRequested"]

    finished = _submit(client).json()["jobId"]
    store.finish(finished, JobStatus.SUCCEEDED, result={})
    refused = client.post(f"/jobs/{finished}/cancel", headers=KEY)
    assert refused.status_code == 409 and "succeeded" in refused.json()["detail"]


def test_the_openapi_spec_documents_the_routes_and_their_answers(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/jobs"]["post"]["responses"]
    assert {"200", "202", "401", "409", "413", "422", "503"} <= set(post)
    assert {"200", "304", "401", "404", "422"} <= set(spec["paths"]["/jobs/{jobId}"]["get"]["responses"])
    assert {"200", "202", "401", "404", "409"} <= set(spec["paths"]["/jobs/{jobId}/cancel"]["post"]["responses"])
