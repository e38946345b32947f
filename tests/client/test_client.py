"""AnalyticsClient in one process: what arrives, what is counted, what never blocks."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import random
import threading
from collections import defaultdict

import pytest

from cv_analytics.client import AnalyticsClient
from cv_analytics.wiring.client import configure, get_client
from cv_analytics.wiring import client as client_module
from cv_analytics.client.records import new_correlation_id
from cv_analytics.client.sender import backoff_delay
from cv_analytics.events import MAX_EVENT_BYTES, Performance, QueryEvent, parse_event, to_json
from cv_analytics.queues.base import QueueConfig

from .doubles import MemoryQueue, segments, wait_until

SESSION = "session-001"


def test_query_and_response_arrive_with_per_event_dedup_ids_session_groups_and_wire_bodies(make_client, queue):
    client = make_client()
    cid = client.log_query(
        "What is your experience with TypeScript?",
        session_id=SESSION,
        metadata={"userAgent": "Mozilla/5.0", "referer": "https://cv.example.dev"},
        timestamp=1763164800000,
    )
    client.log_response(
        cid,
        "Seven years, mostly Node.js.",
        session_id=SESSION,
        total_time=234,
        llm_time=180,
        retrieval_time=54,
        cache_hit=False,
        match_quality=0.95,
        sources_used=["TypeScript", "Node.js"],
        timestamp=1763164800234,
    )
    assert client.flush(timeout=10)

    query, response = queue.stored
    assert (query.dedup_id, query.group_id) == (f"{cid}:query", SESSION)
    assert (response.dedup_id, response.group_id) == (f"{cid}:response", SESSION)
    assert json.loads(query.body) == {
        "eventType": "query",
        "correlationId": cid,
        "timestamp": 1763164800000,
        "sessionId": SESSION,
        "query": "What is your experience with TypeScript?",
        "metadata": {"userAgent": "Mozilla/5.0", "referer": "https://cv.example.dev"},
    }
    assert json.loads(response.body) == {
        "eventType": "response",
        "correlationId": cid,
        "timestamp": 1763164800234,
        "sessionId": SESSION,
        "response": "Seven years, mostly Node.js.",
        "performance": {"totalTime": 234, "llmTime": 180, "retrievalTime": 54, "cacheHit": False},
        "metadata": {"matchQuality": 0.95, "sourcesUsed": ["TypeScript", "Node.js"]},
    }
    assert client.stats().sent == 2


def test_every_contract_message_logged_as_a_dict_arrives_as_its_canonical_body(make_client, queue, contract_dir):
    client = make_client()
    expected = {}
    for path in sorted(contract_dir.glob("*.json")):
        wire = json.loads(path.read_text())
        client.log(wire)
        event = parse_event(wire)
        expected[event.dedup_id] = (to_json(event), event.group_id)
    assert client.flush(timeout=10)
    assert {m.dedup_id: (m.body, m.group_id) for m in queue.stored} == expected
    # the older shape has no session: its correlation id keeps query and response in one group
    assert {m.group_id for m in queue.stored} == {"session-001", "0b9e4f7a-1c2d-4e3f-8a9b-7c6d5e4f3a21"}


def test_log_accepts_event_models_and_log_query_makes_a_uuid4_correlation_id(make_client, queue, clock):
    client = make_client()
    cid = client.log_query("Python?")
    model = QueryEvent(correlation_id="given-id", timestamp=1763164800000, query="Go?", session_id="s-2")
    client.log(model)
    assert client.flush(timeout=10)
    first, second = queue.bodies()
    assert first["correlationId"] == cid and len(cid) == 36 and cid[14] == "4"
    assert first["timestamp"] == int(clock.now() * 1000)  # the injected clock dates the event
    assert "sessionId" not in first
    assert second == json.loads(to_json(model))


def test_timestamps_may_be_datetimes_and_performance_a_model(make_client, queue):
    client = make_client()
    when = dt.datetime(2025, 11, 15, 12, 0, tzinfo=dt.UTC)
    cid = client.log_query("Rust?", timestamp=when)
    client.log_response(cid, timestamp=when.replace(tzinfo=None), performance=Performance(total_time=12, cache_hit=True), llm_time=9)
    assert client.flush(timeout=10)
    query, response = queue.bodies()
    assert query["timestamp"] == response["timestamp"] == int(when.timestamp() * 1000)
    assert response["performance"] == {"totalTime": 12, "llmTime": 9, "cacheHit": True}


def test_correlation_ids_are_distinct_version_4_uuids():
    ids = {new_correlation_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(i[14] == "4" and i[19] in "89ab" for i in ids)


def test_log_query_returns_and_buffers_while_the_queue_send_is_stuck(make_client, queue):
    queue.gate = threading.Event()  # every send hangs until the gate opens
    client = make_client()
    client.log_query("first", session_id=SESSION)
    assert queue.entered.wait(10)  # the sender took it and hangs in send_batch

    cid = client.log_query("asked while the queue hangs", session_id=SESSION)

    assert cid
    assert client.stats().buffered == 1
    queue.gate.set()
    assert client.flush(timeout=10)
    assert [b["query"] for b in queue.bodies()] == ["first", "asked while the queue hangs"]


def test_flush_and_close_give_up_at_their_deadline_when_the_queue_hangs_forever(make_client, queue, spool_dir):
    queue.gate = threading.Event()
    client = make_client()
    for i in range(25):
        client.log_query(f"q{i}", session_id=SESSION)
    assert queue.entered.wait(10)

    assert client.flush(timeout=0.2) is False
    assert client.close(timeout=0.3) is False

    # close spooled what the stuck sender could not send, in order: the next client replays it
    replay_queue = MemoryQueue()
    successor = AnalyticsClient(replay_queue, spool_dir=spool_dir, flush_interval=0.05)
    assert successor.flush(timeout=10)
    assert [b["query"] for b in replay_queue.bodies()] == [f"q{i}" for i in range(25)]
    assert successor.close(timeout=5)


def test_an_outage_loses_nothing_and_keeps_each_sessions_order(make_client, queue, spool_dir):
    queue.down = True
    client = make_client()
    sessions = [f"s{n}" for n in range(3)]
    for i in range(60):
        client.log_query(f"{i}", session_id=sessions[i % 3])
    assert client.flush(timeout=0.2) is False
    assert wait_until(lambda: client.stats().spooled == 60 and client.stats().buffered == 0)
    assert segments(spool_dir)
    for i in range(60, 90):  # more traffic while the queue is still down
        client.log_query(f"{i}", session_id=sessions[i % 3])
    assert client.flush(timeout=0.2) is False

    queue.down = False
    assert client.flush(timeout=10)

    per_session = defaultdict(list)
    for body in queue.bodies():
        per_session[body["sessionId"]].append(int(body["query"]))
    assert per_session == {s: list(range(n, 90, 3)) for n, s in enumerate(sessions)}
    stats = client.stats()
    assert (stats.sent, stats.dropped, stats.failed) == (90, 0, 0)
    assert stats.retries >= 1
    assert segments(spool_dir) == []


def test_spool_bound_reached_during_an_outage_drops_and_counts_the_excess(make_client, queue, spool_dir):
    queue.down = True
    client = make_client(max_spool_bytes=8 * 1024, spool_segment_bytes=2 * 1024)
    for i in range(300):
        client.log_query(f"question number {i} about distributed systems", session_id=SESSION)
    assert client.flush(timeout=0.2) is False
    assert wait_until(lambda: client.stats().spooled + client.stats().dropped == 300)
    stats = client.stats()
    assert stats.dropped > 0 and stats.spooled > 0
    assert sum(p.stat().st_size for p in segments(spool_dir)) <= 8 * 1024

    queue.down = False
    assert client.flush(timeout=10)
    sent = [int(b["query"].split()[2]) for b in queue.bodies()]
    assert sent == list(range(stats.spooled))  # what was kept is the oldest events, in order
    assert client.stats().sent + client.stats().dropped == 300


def test_invalid_events_are_counted_never_raised_never_sent(make_client, queue):
    client = make_client()
    client.log({"eventType": "bogus", "correlationId": "x", "timestamp": 1})
    client.log({"eventType": "query", "timestamp": 1763164800000, "query": "no correlation id"})
    client.log(42)  # type: ignore[arg-type]
    client.log_query(123, session_id=SESSION)  # type: ignore[arg-type]
    client.log_query("when?", timestamp="yesterday")  # type: ignore[arg-type]
    client.log_response(None)  # type: ignore[arg-type]
    client.log_query("a valid one", session_id=SESSION)
    assert client.flush(timeout=10)
    stats = client.stats()
    assert (stats.invalid, stats.sent) == (6, 1)
    assert [b["query"] for b in queue.bodies()] == ["a valid one"]


def test_an_optional_field_out_of_range_is_dropped_the_response_and_timings_kept(make_client, queue):
    # issue 7 item 7: match_quality=15 (a percentage) used to make the whole response invalid
    client = make_client()
    cid = client.log_query("Rust?", session_id=SESSION)
    client.log_response(cid, "Some.", session_id=SESSION, total_time=120, llm_time=-3, match_quality=15,
                        sources_used="Python")
    client.log_response("cid-2", "Yes.", match_quality=7.5)
    assert client.flush(timeout=10)
    stats = client.stats()
    assert (stats.invalid, stats.sent) == (0, 3)
    assert stats.dropped_fields == {"metadata.matchQuality": 2, "performance.llmTime": 1}
    response = next(b for b in queue.bodies() if b.get("correlationId") == cid and b["eventType"] == "response")
    assert response["response"] == "Some." and response["performance"] == {"totalTime": 120}
    assert response["metadata"] == {"sourcesUsed": ["Python"]}  # one source, not six letters


def test_an_event_the_queue_rejects_as_too_large_fails_alone_and_its_batch_is_sent(make_client, spool_dir):
    small_queue = MemoryQueue(config=QueueConfig(max_message_bytes=2_000))
    client = make_client(small_queue)
    for i in range(10):
        client.log_query("x" * 5_000 if i == 4 else f"q{i}", session_id=SESSION)
    client.log_query("y" * (MAX_EVENT_BYTES + 1), session_id=SESSION)  # over the wire format's own limit
    assert client.flush(timeout=10)
    stats = client.stats()
    assert (stats.sent, stats.failed, stats.retries) == (9, 2, 0)
    assert [b["query"] for b in small_queue.bodies()] == [f"q{i}" for i in range(10) if i != 4]


@pytest.mark.slow
def test_a_burst_larger_than_the_buffer_arrives_in_full_through_the_spool(make_client, queue, spool_dir):
    client = make_client(max_buffer=20_000)
    total = 60_000
    sessions = [f"s{n}" for n in range(4)]
    for i in range(total):
        client.log_query(str(i), session_id=sessions[i % 4])
    assert client.flush(timeout=120)
    stats = client.stats()
    assert stats.dropped == 0
    assert stats.sent == total
    assert stats.spooled > 0  # the burst went through the disk
    per_session = defaultdict(list)
    for body in queue.bodies():
        per_session[body["sessionId"]].append(int(body["query"]))
    assert per_session == {s: list(range(n, total, 4)) for n, s in enumerate(sessions)}
    assert segments(spool_dir) == []


def test_a_full_buffer_with_no_spool_drops_and_counts(make_client, queue, tmp_path):
    unwritable = tmp_path / "file-not-dir"
    unwritable.write_text("a file where the spool directory should be")
    queue.gate = threading.Event()
    client = make_client(spool_dir=unwritable / "spool", max_buffer=20, batch_size=10)
    client.log_query("q0")
    assert queue.entered.wait(10)
    for i in range(1, 31):
        client.log_query(f"q{i}")
    assert client.stats().dropped == 10  # 1 in flight, 20 buffered, the rest dropped
    queue.gate.set()
    assert client.flush(timeout=10)
    assert [b["query"] for b in queue.bodies()] == [f"q{i}" for i in range(21)]


def test_events_logged_after_close_are_dropped_and_counted(make_client, queue):
    client = make_client()
    client.log_query("before")
    assert client.close(timeout=5)
    client.log_query("after")
    assert [b["query"] for b in queue.bodies()] == ["before"]
    assert client.stats().dropped == 1
    assert client.close(timeout=1)  # closing twice is harmless


def test_a_client_that_never_logged_closes_at_once(make_client):
    assert make_client().close(timeout=1)


def test_a_queue_factory_is_called_on_the_sender_thread_and_its_failure_is_retried(make_client, queue):
    calls = []

    def factory():
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise ConnectionError("database not ready yet")
        return queue

    client = make_client(factory)
    client.log_query("first")
    assert client.flush(timeout=10)
    assert [b["query"] for b in queue.bodies()] == ["first"]
    assert set(calls) == {"cv-analytics-sender-io"}  # never the caller's thread


def test_flush_replays_what_a_closed_client_left_in_the_spool(make_client, queue, spool_dir):
    queue.down = True
    first = make_client()
    first.log_query("left behind", session_id=SESSION)
    assert first.close(timeout=2) is False
    assert segments(spool_dir)

    queue.down = False
    second = make_client()
    assert second.flush(timeout=10)
    assert [b["query"] for b in queue.bodies()] == ["left behind"]
    assert segments(spool_dir) == []


def test_a_live_clients_spool_is_not_replayed_by_another_until_it_lets_go(make_client, queue, spool_dir):
    down_queue = MemoryQueue()
    down_queue.down = True
    holder = make_client(down_queue)
    holder.log_query("held")
    assert wait_until(lambda: holder.stats().spooled == 1)

    other = make_client(queue)
    other.log_query("own")
    assert other.flush(timeout=10)
    assert [b["query"] for b in queue.bodies()] == ["own"]  # the holder's segment is locked

    assert holder.close(timeout=1) is False
    assert other.flush(timeout=10)
    assert [b["query"] for b in queue.bodies()] == ["own", "held"]


def test_full_jitter_backoff_stays_under_a_doubling_capped_ceiling():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.2 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 0.2, 30.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the whole range, not a fixed delay


def test_get_client_returns_one_client_per_process_and_configure_replaces_it(monkeypatch, tmp_path, queue):
    monkeypatch.setenv("CV_ANALYTICS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(client_module, "_default", None)
    default = get_client()
    try:
        assert get_client() is default
        assert pathlib.Path(default.spool_dir) == tmp_path / "data" / "spool"
        replacement = configure(queue, spool_dir=tmp_path / "spool", flush_interval=0.05)
        assert get_client() is replacement
        replacement.log_query("through the process-wide client")
        assert replacement.flush(timeout=10)
        assert [b["query"] for b in queue.bodies()] == ["through the process-wide client"]
    finally:
        get_client().close(timeout=2)
        monkeypatch.setattr(client_module, "_default", None)


def test_a_client_is_a_context_manager_that_closes(queue, spool_dir):
    with AnalyticsClient(queue, spool_dir=spool_dir) as client:
        client.log_query("inside")
    assert [b["query"] for b in queue.bodies()] == ["inside"]
    assert client.stats().sent == 1


def test_a_non_queue_is_refused_at_construction(spool_dir):
    with pytest.raises(TypeError, match="Queue"):
        AnalyticsClient("sqlite:///x.db", spool_dir=spool_dir)  # type: ignore[arg-type]


def test_a_batch_that_fails_after_a_burst_was_spooled_is_still_replayed_first(make_client, queue, spool_dir):
    queue.gate, queue.down = threading.Event(), True  # the first send hangs, then fails
    client = make_client(max_buffer=200, spill_threshold=20)
    client.log_query("0", session_id=SESSION)
    assert queue.entered.wait(10)
    for i in range(1, 100):  # newer events: spilled to the spool while "0" is on its way
        client.log_query(str(i), session_id=SESSION)
    assert wait_until(lambda: client.stats().spooled == 99)

    queue.gate.set()  # "0" comes back refused: it must go ahead of the spooled 99
    assert wait_until(lambda: client.stats().spooled == 100)
    queue.down = False
    assert client.flush(timeout=10)
    assert [b["query"] for b in queue.bodies()] == [str(i) for i in range(100)]
