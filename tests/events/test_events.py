"""The wire format: both producer shapes in, clear errors naming the field out."""

from __future__ import annotations

import json

import pytest

from cv_analytics.events import (
    MAX_EVENT_BYTES,
    EventShape,
    EventType,
    MatchType,
    QueryEvent,
    ResponseEvent,
    classify_match_quality,
    iso_week,
    parse_event,
    to_json,
)
from cv_analytics.exceptions import EventTooLargeError, InvalidEventError

#: A plausible event time (2025-11-15 00:00 UTC, in ms).
T = 1_763_164_800_000


@pytest.mark.parametrize(
    "name, kind, shape",
    [
        ("query-event.json", EventType.QUERY, EventShape.CURRENT),
        ("response-event.json", EventType.RESPONSE, EventShape.CURRENT),
        ("legacy-query-event.json", EventType.QUERY, EventShape.LEGACY),
        ("legacy-response-event.json", EventType.RESPONSE, EventShape.LEGACY),
    ],
)
def test_every_contract_message_parses_and_survives_a_round_trip(contract_dir, name, kind, shape):
    event = parse_event((contract_dir / name).read_text())
    assert event.event_type is kind and event.shape is shape
    again = parse_event(to_json(event))
    assert again.correlation_id == event.correlation_id and again.timestamp == event.timestamp
    assert event.dedup_id == f"{event.correlation_id}:{kind.value}"


def test_legacy_response_keeps_match_type_score_and_reasoning(contract_dir):
    event = parse_event((contract_dir / "legacy-response-event.json").read_text())
    assert isinstance(event, ResponseEvent)
    assert event.correlation_id == "0b9e4f7a-1c2d-4e3f-8a9b-7c6d5e4f3a21"
    assert event.effective_match_type is MatchType.PARTIAL and event.effective_match_score == 62
    assert event.session_id is None and event.performance is None and event.response is None
    # no session: the correlation id keeps query and response in one FIFO group
    assert event.group_id == event.correlation_id


def test_current_response_maps_match_quality_through_the_documented_thresholds(contract_dir):
    event = parse_event((contract_dir / "response-event.json").read_text())
    assert event.effective_match_type is MatchType.FULL and event.effective_match_score == 95.0
    assert event.group_id == "session-001"
    assert [classify_match_quality(q) for q in (0.8, 0.79, 0.5, 0.49, None)] == [
        MatchType.FULL, MatchType.PARTIAL, MatchType.PARTIAL, MatchType.NONE, None,
    ]  # fmt: skip


def test_query_and_response_of_one_interaction_have_distinct_dedup_ids():
    q = QueryEvent(correlation_id="c", timestamp=T, query="q")
    r = ResponseEvent(correlation_id="c", timestamp=T + 1)
    assert q.dedup_id != r.dedup_id


@pytest.mark.parametrize(
    "body, field",
    [
        ({"eventType": "click", "correlationId": "c", "timestamp": T}, "eventType"),
        ({"correlationId": "c", "timestamp": T, "query": "q"}, "eventType"),
        ({"eventType": "query", "timestamp": T, "query": "q"}, "correlationId"),
        ({"eventType": "query", "correlationId": "", "timestamp": T, "query": "q"}, "correlationId"),
        ({"eventType": "query", "correlationId": "c", "timestamp": "yesterday", "query": "q"}, "timestamp"),
        ({"eventType": "query", "correlationId": "c", "timestamp": T}, "query"),
    ],
)
def test_invalid_events_name_the_offending_field(body, field):
    with pytest.raises(InvalidEventError) as info:
        parse_event(json.dumps(body))
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"matchScore": 140}, "matchScore"),
        ({"matchType": "most"}, "matchType"),
        ({"performance": {"totalTime": "slow", "llmTime": 12}}, "performance.totalTime"),
        ({"metadata": {"matchQuality": 2, "sourcesUsed": ["Go"]}}, "metadata.matchQuality"),
    ],
)
def test_an_optional_field_out_of_range_is_dropped_and_named_the_rest_kept(extra, field):
    # issue 7 item 7: these used to make the whole event invalid (same bodies as before)
    body = {"eventType": "response", "correlationId": "c", "timestamp": T, "response": "Yes", **extra}
    event = parse_event(json.dumps(body))
    assert isinstance(event, ResponseEvent)
    assert event.dropped_fields == (field,) and event.response == "Yes"
    if field.startswith("performance"):
        assert event.performance is not None and event.performance.total_time is None
        assert event.performance.llm_time == 12
    if field.startswith("metadata"):
        assert event.metadata.match_quality is None and event.metadata.sources_used == ["Go"]


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "null", b"\xff\xfe"])
def test_bodies_that_are_not_json_objects_are_rejected_clearly(body):
    with pytest.raises(InvalidEventError, match="JSON"):
        parse_event(body)


def test_a_body_over_256_kib_is_rejected_before_parsing():
    body = json.dumps({"eventType": "query", "correlationId": "c", "timestamp": T, "query": "x" * MAX_EVENT_BYTES})
    with pytest.raises(EventTooLargeError, match="262144-byte limit"):
        parse_event(body)


def test_iso_week_is_utc_and_uses_iso_years():
    assert iso_week(1_763_164_800_000) == "2025-W46"  # Sat 2025-11-15 00:00 UTC
    assert iso_week(1_767_225_600_000) == "2026-W01"  # Thu 2026-01-01 00:00 UTC belongs to 2026-W01
    assert iso_week(1_767_052_800_000) == "2026-W01"  # Tue 2025-12-30: ISO year 2026


def test_to_json_is_the_wire_dict_as_compact_json(contract_dir):
    # to_json serializes in pydantic-core for speed: it must stay the same text as to_wire
    import json

    from cv_analytics.events import parse_event, to_json, to_wire

    for path in sorted(contract_dir.glob("*.json")):
        event = parse_event(path.read_text())
        assert to_json(event) == json.dumps(to_wire(event), separators=(",", ":"), ensure_ascii=False), path.name
