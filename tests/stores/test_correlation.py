"""Correlation semantics every store must keep: one interaction per correlation id, exactly once."""

from __future__ import annotations

import json
import uuid

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.events import EventShape, EventType, MatchType, QueryEvent, ResponseEvent, parse_event
from cv_analytics.stores.base import Store
from cv_analytics.stores.models import InteractionStatus, RecordOutcome


def contract(contract_dir, name: str) -> QueryEvent | ResponseEvent:
    return parse_event((contract_dir / name).read_text())


def query(cid: str, ts: int = 1_763_164_800_000, session: str | None = "s-1", text: str = "Python?") -> QueryEvent:
    return QueryEvent(correlation_id=cid, timestamp=ts, session_id=session, query=text)


def response(cid: str, ts: int = 1_763_164_800_250, session: str | None = "s-1") -> ResponseEvent:
    return ResponseEvent.model_validate(
        {
            "correlationId": cid,
            "timestamp": ts,
            "sessionId": session,
            "response": "Yes",
            "performance": {"totalTime": 250, "llmTime": 200, "retrievalTime": 50, "cacheHit": True},
            "metadata": {"matchQuality": 0.6, "sourcesUsed": ["Python"]},
        }
    )


@pytest.mark.parametrize("order", ["query_first", "response_first"])
@pytest.mark.parametrize("shape", ["current", "legacy"])
def test_contract_pair_in_either_order_becomes_one_interaction(store: Store, contract_dir, order, shape):
    prefix = "legacy-" if shape == "legacy" else ""
    q = contract(contract_dir, f"{prefix}query-event.json")
    r = contract(contract_dir, f"{prefix}response-event.json")
    first, second = (q, r) if order == "query_first" else (r, q)

    assert store.record_events([first]) == [RecordOutcome.PENDING]
    assert store.record_events([second]) == [RecordOutcome.CORRELATED]

    interaction = store.get_interaction(q.correlation_id)
    assert interaction is not None
    assert interaction.status is InteractionStatus.ANSWERED
    assert interaction.query == q.query
    assert interaction.timestamp == q.timestamp and interaction.response_timestamp == r.timestamp
    assert interaction.week == "2025-W46"
    assert store.counts().total_interactions == 1
    assert store.get_pending(q.correlation_id) == {}
    if shape == "legacy":
        assert interaction.shape is EventShape.LEGACY
        assert (interaction.match_type, interaction.match_score) == (MatchType.PARTIAL, 62.0)
        assert interaction.reasoning.startswith("Python appears")
        assert interaction.session_id is None and interaction.total_time is None
    else:
        assert interaction.session_id == "session-001"
        assert (interaction.total_time, interaction.llm_time, interaction.retrieval_time) == (234, 180, 54)
        assert interaction.match_type is MatchType.FULL and interaction.match_score == 95.0
        assert interaction.sources_used == ["TypeScript", "Node.js", "Express"]


def test_query_and_response_in_one_batch_correlate(store: Store):
    assert store.record_events([query("a"), response("a")]) == [RecordOutcome.PENDING, RecordOutcome.CORRELATED]
    assert store.counts().total_interactions == 1
    assert store.counts().pending_queries == 0


def test_duplicates_in_a_batch_and_across_batches_count_once(store: Store):
    outcomes = store.record_events([query("a"), query("a"), response("a"), response("a")])
    assert outcomes == [RecordOutcome.PENDING, RecordOutcome.DUPLICATE, RecordOutcome.CORRELATED, RecordOutcome.DUPLICATE]
    # redelivery after a crash, and a producer retry after the dedup window
    assert store.record_events([response("a"), query("a")]) == [RecordOutcome.DUPLICATE, RecordOutcome.DUPLICATE]
    assert store.counts().total_interactions == 1
    assert store.counts().pending_queries == store.counts().pending_responses == 0


def test_pending_duplicate_is_not_recorded_twice(store: Store):
    assert store.record_events([query("a")]) == [RecordOutcome.PENDING]
    assert store.record_events([query("a")]) == [RecordOutcome.DUPLICATE]
    assert store.counts().pending_queries == 1


def test_unanswered_query_is_swept_and_completed_by_a_late_response(store: Store, clock: ManualClock):
    store.record_events([query("late")])
    assert store.sweep_orphans(600).total == 0  # too young
    clock.advance(601)
    swept = store.sweep_orphans(600)
    assert (swept.unanswered, swept.orphan_responses) == (1, 0)
    assert store.get_interaction("late").status is InteractionStatus.UNANSWERED
    assert store.sweep_orphans(600).total == 0  # idempotent

    assert store.record_events([response("late")]) == [RecordOutcome.COMPLETED_LATE]
    interaction = store.get_interaction("late")
    assert interaction.status is InteractionStatus.ANSWERED
    assert interaction.query == "Python?" and interaction.response == "Yes" and interaction.total_time == 250
    assert store.record_events([response("late")]) == [RecordOutcome.DUPLICATE]
    assert store.counts().total_interactions == 1


def test_orphan_response_takes_the_query_week_once_the_query_arrives(store: Store, clock: ManualClock):
    week_later = 1_763_164_800_000 + 7 * 86_400_000
    store.record_events([response("o", ts=week_later)])
    clock.advance(3000)
    assert store.sweep_orphans(600).orphan_responses == 1
    orphan = store.get_interaction("o")
    assert orphan.status is InteractionStatus.ORPHAN_RESPONSE and orphan.week == "2025-W47"
    assert orphan.query is None

    store.record_events([query("o", ts=1_763_164_800_000)])
    completed = store.get_interaction("o")
    assert completed.status is InteractionStatus.ANSWERED
    assert completed.week == "2025-W46" and completed.timestamp == 1_763_164_800_000
    assert completed.match_score == 60.0


def test_expired_pending_events_are_ignored_by_every_read(store: Store, clock: ManualClock):
    store.record_events([query("old")])
    clock.advance(3601)  # past the 1 h TTL of the fixture; not deleted yet
    assert store.get_pending("old") == {}
    assert store.counts().pending_queries == 0
    assert store.sweep_orphans(0).total == 0  # an expired event is never swept into an interaction
    # its response now waits alone, as the query is gone
    assert store.record_events([response("old")]) == [RecordOutcome.PENDING]
    assert store.purge_expired() in (0, 1)
    assert store.counts().pending_responses == 1


def test_many_ids_in_one_batch(store: Store):
    ids = [str(uuid.uuid4()) for _ in range(450)]
    store.record_events([query(c) for c in ids[:10]])
    outcomes = store.record_events([response(c) for c in ids])
    assert outcomes.count(RecordOutcome.CORRELATED) == 10
    assert outcomes.count(RecordOutcome.PENDING) == 440


def test_iter_interactions_by_week_oldest_first(store: Store):
    store.record_events([query("b", ts=1_763_164_900_000), response("b"), query("a"), response("a")])
    store.record_events([query("c", ts=1_763_164_800_000 + 7 * 86_400_000), response("c")])
    assert [i.correlation_id for i in store.iter_interactions("2025-W46")] == ["a", "b"]
    assert [i.correlation_id for i in store.iter_interactions()] == ["a", "b", "c"]
    exported = next(iter(store.iter_interactions("2025-W47"))).to_export()
    assert exported["correlationId"] == "c" and exported["status"] == "answered" and exported["week"] == "2025-W47"
    json.dumps(exported)


# -- the sweep isolates one bad row (issue 7, item 2) ----------------------------------


def test_a_stored_timestamp_in_microseconds_is_closed_and_the_other_lone_queries_are_swept(
    store: Store, clock: ManualClock, caplog
):
    from tests.stores.conftest import write_raw_pending

    store.record_events([query("good-1"), query("good-2")])
    now = int(clock.now() * 1000)
    bad = {"eventType": "query", "correlationId": "bad", "timestamp": 1_763_769_600_000_000, "query": "Rust?"}
    write_raw_pending(store, "bad", EventType.QUERY, bad, received_at=now, expires_at=now + 3_600_000)
    clock.advance(601)

    with caplog.at_level("ERROR"):
        swept = store.sweep_orphans(600)

    assert (swept.unanswered, swept.orphan_responses, swept.closed) == (2, 0, 1)
    assert store.get_interaction("good-1").status is InteractionStatus.UNANSWERED
    assert store.get_interaction("good-2").status is InteractionStatus.UNANSWERED
    assert store.get_interaction("bad") is None and store.get_pending("bad") == {}
    assert any("bad" in r.getMessage() and "out of range" in r.getMessage() for r in caplog.records)
    assert store.sweep_orphans(600) == type(swept)()  # closed for good: the next sweep finds nothing


def test_a_stored_event_that_does_not_decode_is_closed_without_stopping_the_sweep(store: Store, clock: ManualClock):
    from tests.stores.conftest import write_raw_pending

    store.record_events([response("lone")])
    now = int(clock.now() * 1000)
    write_raw_pending(store, "junk", EventType.QUERY, {"eventType": "query"}, received_at=now, expires_at=now + 3_600_000)
    clock.advance(601)

    swept = store.sweep_orphans(600)

    assert (swept.orphan_responses, swept.closed) == (1, 1)
    assert store.get_interaction("lone").status is InteractionStatus.ORPHAN_RESPONSE
    assert store.counts().pending_queries == 0
