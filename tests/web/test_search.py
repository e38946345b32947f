"""``/api/search``: an answer from the catalog, and exactly one interaction per request once the worker drains."""

from __future__ import annotations

import sqlite3
import time

import pytest
from fastapi.testclient import TestClient

from cv_analytics.entrypoints.web import create_app
from cv_analytics.stores.models import InteractionStatus
from cv_analytics.wiring import Wiring

from tests.assistant.chat_server import Reply, chat_server, completion

from .conftest import drain_app, web_settings

QUESTION = "What is your experience with TypeScript?"
BROWSER = {"user-agent": "Mozilla/5.0 (recruiter)", "referer": "https://cv.example.dev/"}


def _ask(client, method: str, question: str, session: str | None):
    headers = {**BROWSER, **({"x-session-id": session} if session is not None else {})}
    if method == "GET":
        return client.get("/api/search", params={"q": question}, headers=headers)
    return client.post("/api/search", json={"q": question}, headers=headers)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("session", ["session-42", None, ""], ids=["with_session", "without_session", "empty_session"])
def test_each_search_is_exactly_one_interaction_after_the_worker_drains(client, drain, wiring, method, session):
    questions = [QUESTION, "Do you know Kubernetes?", QUESTION]  # the third is a cache hit
    replies = [_ask(client, method, q, session) for q in questions]
    assert [r.status_code for r in replies] == [200, 200, 200]
    drain()

    interactions = {i.correlation_id: i for i in wiring.store.iter_interactions()}
    assert len(interactions) == 3
    counts = wiring.store.counts()
    assert counts.pending_queries == counts.pending_responses == 0
    for question, reply in zip(questions, replies, strict=True):
        body = reply.json()
        assert reply.headers["x-correlation-id"] == body["correlationId"]
        interaction = interactions[body["correlationId"]]
        assert interaction.status is InteractionStatus.ANSWERED
        assert interaction.query == question and interaction.response == body["answer"]
        assert interaction.session_id == (session or None)
        assert interaction.user_agent == BROWSER["user-agent"] and interaction.referer == BROWSER["referer"]
        assert interaction.match_quality == pytest.approx(body["matchScore"])
        assert interaction.sources_used == body["sources"][:5]
        assert body["sources"] and set(body["sources"]) <= {m["skill"] for m in body["matches"]}
        assert interaction.cache_hit is body["cacheHit"]
        assert interaction.retrieval_time == pytest.approx(body["timings"]["retrievalMs"])
        assert interaction.total_time == pytest.approx(body["timings"]["totalMs"])
    assert [r.json()["cacheHit"] for r in replies] == [False, False, True]


def test_the_answer_comes_from_the_catalog(client):
    body = _ask(client, "POST", QUESTION, None).json()
    assert body["matchQuality"] == "full" and body["matches"][0]["skill"] == "TypeScript"
    assert body["matches"][0]["evidence"] and "TypeScript" in body["answer"]
    assert body["method"] == "bm25" and body["timings"]["llmMs"] is None
    nothing = _ask(client, "GET", "Can you fly a helicopter?", None).json()
    assert nothing["matchQuality"] == "none"
    blank = _ask(client, "POST", " \t ", None).json()  # asked like any other: the answer says what to ask
    assert blank["matchQuality"] == "none" and blank["answer"]


@pytest.mark.parametrize(
    ("request_kwargs", "where"),
    [
        ({"params": {"q": ""}}, "at least 1 character"),
        ({"params": {"q": "x" * 2001}}, "2000"),
        ({"params": {}}, "Field required"),
    ],
    ids=["empty", "too_long", "missing"],
)
def test_a_bad_question_is_422_and_logs_nothing(client, wiring, app, request_kwargs, where):
    reply = client.get("/api/search", **request_kwargs)
    assert reply.status_code == 422
    assert where in reply.text
    assert app.state.analytics.flush(5.0)
    assert wiring.queue().attributes().visible == 0


def test_a_bad_json_body_is_422(client):
    assert client.post("/api/search", content=b"{", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/api/search", json={"q": ""}).status_code == 422
    assert client.post("/api/search", json={"question": QUESTION}).status_code == 422
    reply = client.post("/api/search", content=b'{"q": "\\ud800"}', headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "unicode" in reply.text  # echoed as ASCII JSON, not a 500


def test_with_analytics_off_there_is_no_client_and_nothing_is_queued(tmp_path):
    settings = web_settings(tmp_path / "data", CV_ANALYTICS_ANALYTICS_ENABLED="0")
    with Wiring(settings) as wiring, TestClient(create_app(wiring)) as client:
        assert client.app.state.analytics is None
        reply = _ask(client, "POST", QUESTION, "s1")
        assert reply.status_code == 200 and reply.headers["x-correlation-id"]
        assert wiring.queue().attributes().visible == 0
        assert "cv_analytics_events_sent_total" not in client.get("/metrics").text


def test_a_locked_queue_never_fails_a_search_and_nothing_is_lost(client, app, drain, wiring, settings):
    wiring.queue().attributes()  # the database exists before it is locked
    locker = sqlite3.connect(settings.data_dir / "queues.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # the analytics queue takes no writes: the client retries, then spools
    try:
        replies = [_ask(client, "POST", f"{QUESTION} ({i})", "s-locked") for i in range(5)]
        deadline = time.monotonic() + 60
        while not (app.state.analytics.stats().retries or app.state.analytics.stats().spooled):
            assert time.monotonic() < deadline, "the client never met the locked queue"
            time.sleep(0.05)
        assert _ask(client, "GET", QUESTION, "s-locked").status_code == 200  # while the client is in its backoff
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert [r.status_code for r in replies] == [200] * 5
    drain()
    assert len(list(wiring.store.iter_interactions())) == 6
    assert app.state.analytics.stats().dropped == 0


def test_with_an_llm_configured_the_answer_and_its_time_come_from_it_and_an_outage_falls_back(tmp_path):
    written = {
        "answer": "Seven years of TypeScript, mostly Node.js services.",
        "matchQuality": "full",
        "confidence": 0.9,
        "reasoning": "TypeScript is one of the CV's main skills",
    }
    with chat_server() as llm:
        llm.respond = lambda _body: Reply(body=completion(written))
        settings = web_settings(tmp_path / "data", CV_ANALYTICS_LLM_URL=llm.url, CV_ANALYTICS_LLM_MODEL="test-model")
        with Wiring(settings) as wiring, TestClient(create_app(wiring)) as client:
            body = _ask(client, "POST", QUESTION, "s-llm").json()
            assert (body["answer"], body["matchQuality"], body["reasoning"]) == (
                written["answer"], "full", written["reasoning"]
            )
            assert body["timings"]["llmMs"] > 0 and body["matches"][0]["skill"] == "TypeScript"
            assert QUESTION in llm.requests[0]["body"]["messages"][-1]["content"]

            llm.respond = lambda _body: Reply(status=503, body={"error": "overloaded"})
            fallback = client.post("/api/search", json={"q": "Do you know Kubernetes?"})
            assert fallback.status_code == 200 and "Kubernetes" in fallback.json()["answer"]  # composed from the catalog

            drain_app(client.app, wiring)
            interaction = wiring.store.get_interaction(body["correlationId"])
            assert interaction.response == written["answer"]
            assert interaction.llm_time == pytest.approx(body["timings"]["llmMs"])
            assert len(list(wiring.store.iter_interactions())) == 2
