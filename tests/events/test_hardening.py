"""Issue 7 at the edge: bounded parsing, plausible timestamps, ids that fit SQS, lenient optional fields."""

from __future__ import annotations

import json
import logging

import pytest

from cv_analytics.events import (
    MAX_EVENT_BYTES,
    MAX_NESTING_DEPTH,
    QueryEvent,
    ResponseEvent,
    deduplication_id,
    message_group_id,
    parse_event,
)
from cv_analytics.exceptions import InvalidEventError

T = 1_763_164_800_000  # 2025-11-15 00:00 UTC, in ms


def query(**fields: object) -> dict:
    return {"eventType": "query", "correlationId": "c-1", "timestamp": T, "query": "Go?", **fields}


def nested_json(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("as_text", [True, False])
def test_a_5000_deep_body_is_an_invalid_event_naming_the_depth_limit_not_a_recursion_error(as_text):
    # issue 7 item 1: this crashed the embedded worker with RecursionError
    body = json.dumps(query(metadata={}), separators=(",", ":")).replace('"metadata":{}', '"metadata":{"x":' + nested_json(5000) + "}")
    assert len(body.encode()) < MAX_EVENT_BYTES
    if not as_text:  # the same depth as an already-decoded dict
        value: dict = {}
        for _ in range(5000):
            value = {"x": value}
        body = query(metadata=value)  # type: ignore[assignment]
    with pytest.raises(InvalidEventError, match=f"deeper than {MAX_NESTING_DEPTH} levels"):
        parse_event(body)


def test_the_depth_limit_is_32_levels_and_brackets_inside_strings_do_not_count():
    at_limit = query(metadata={"x": json.loads(nested_json(MAX_NESTING_DEPTH - 2))})
    assert parse_event(json.dumps(at_limit)).query == "Go?"
    with pytest.raises(InvalidEventError, match="depth limit"):
        parse_event(json.dumps(query(metadata={"x": json.loads(nested_json(MAX_NESTING_DEPTH - 1))})))
    assert parse_event(json.dumps(query(query="[[[[" * 100 + "{" * 100))).query.startswith("[[[[")


def test_unbalanced_deep_brackets_are_invalid_json_not_a_recursion_error():
    with pytest.raises(InvalidEventError, match="not valid JSON"):
        parse_event('{"eventType":"query","x":' + "[" * 5000)


@pytest.mark.parametrize(
    "timestamp",
    [1_763_769_600_000_000, -5, 0, 4_102_444_800_000, 946_684_799_999, 10**30],
)
def test_a_timestamp_out_of_the_plausible_range_is_invalid_naming_timestamp(timestamp):
    # issue 7 item 2: microseconds (1763769600000000) made every orphan sweep raise
    with pytest.raises(InvalidEventError, match="2000-01-01 and 2100-01-01") as info:
        parse_event(json.dumps(query(timestamp=timestamp)))
    assert info.value.field == "timestamp"


def test_a_timestamp_in_seconds_is_converted_to_ms_with_one_warning_per_process(caplog):
    # issue 7 item 6: seconds were silently filed under 1970-W04
    from cv_analytics import events

    events._warned.discard("timestamp-seconds")
    with caplog.at_level(logging.DEBUG, logger="cv_analytics.events"):
        first = parse_event(json.dumps(query(timestamp=1_763_769_600)))
        second = parse_event(json.dumps(query(timestamp=1_763_769_600.25)))
    assert (first.timestamp, second.timestamp) == (1_763_769_600_000, 1_763_769_600_250)
    assert first.converted_from_seconds and second.converted_from_seconds and first.week == "2025-W47"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "seconds" in r.getMessage()]
    assert len(warnings) == 1
    assert not parse_event(json.dumps(query())).converted_from_seconds


def test_models_built_in_code_are_not_rejudged_only_the_edge_is():
    # stores and tests build models directly; the range is the edge's rule
    assert QueryEvent(correlation_id="c", timestamp=1, query="q").timestamp == 1


def test_the_wire_cannot_claim_what_validation_did():
    event = parse_event(json.dumps(query(droppedFields=["x"], convertedFromSeconds=True, shape="legacy")))
    assert event.dropped_fields == () and not event.converted_from_seconds and event.shape.value == "current"


@pytest.mark.parametrize("length", [1, 100, 127, 128, 200, 256])
def test_deduplication_ids_always_fit_sqs_and_never_collide_between_query_and_response(length):
    # issue 7 item 5: cutting "<cid>:<type>" to 128 made a query and its response share an id
    cid = ("a" * 60 + "-" + "b" * 300)[:length]
    q, r = deduplication_id(cid, "query"), deduplication_id(cid, "response")
    assert q != r and len(q) <= 128 and len(r) <= 128
    assert q == deduplication_id(cid, "query")  # stable: a resend deduplicates
    if len(f"{cid}:response") <= 128:
        assert (q, r) == (f"{cid}:query", f"{cid}:response")  # the documented plain form when it fits
    other = cid[:-1] + "z"
    assert deduplication_id(other, "query") != q


def test_ids_with_characters_sqs_refuses_are_hashed_and_long_groups_fit():
    assert len(deduplication_id("with space", "query")) <= 128
    assert " " not in deduplication_id("with space", "query")
    long_session = "s" * 256
    group = message_group_id(long_session)
    assert len(group) <= 128 and group == message_group_id(long_session) != message_group_id("s" * 255)
    event = parse_event(json.dumps(query(correlationId="c" * 256, sessionId=long_session)))
    assert len(event.dedup_id) <= 128 and event.group_id == group


def test_sources_used_as_one_string_is_one_source():
    body = {"eventType": "response", "correlationId": "c", "timestamp": T, "metadata": {"sourcesUsed": "Python"}}
    event = parse_event(json.dumps(body))
    assert isinstance(event, ResponseEvent) and event.metadata.sources_used == ["Python"]


def test_required_fields_stay_strict_even_beside_a_bad_optional_one():
    body = {"eventType": "query", "correlationId": "c", "timestamp": T, "metadata": {"userAgent": 5}}
    with pytest.raises(InvalidEventError) as info:
        parse_event(json.dumps(body))  # no query text: the event is invalid, not repaired
    assert info.value.field == "query"


def test_a_correlation_id_over_its_limit_is_named_too_long_not_missing():
    """Found by the poison scenario (issue 12): a 300-character id was reported as "required and non-empty"."""
    with pytest.raises(InvalidEventError) as info:
        parse_event(json.dumps(query(correlationId="c" * 300)))
    assert info.value.field == "correlationId"
    assert "300 characters, over the 256-character limit" in str(info.value)
    with pytest.raises(InvalidEventError, match="is required"):
        parse_event(json.dumps(query(correlationId="")))


def test_a_stored_event_loads_as_written_without_the_edges_rules_but_bounded():
    from cv_analytics.events import load_event, to_json

    old_row = to_json(QueryEvent(correlation_id="c", timestamp=1, query="q"))  # stored before the range rule
    assert load_event(old_row).timestamp == 1
    with pytest.raises(InvalidEventError, match="depth limit"):
        load_event('{"eventType":"query","correlationId":"c","timestamp":1,"query":"q","metadata":{"x":'
                   + nested_json(5000) + "}}")
