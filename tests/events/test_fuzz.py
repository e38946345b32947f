"""Generated bodies into parse_event: whatever the input, InvalidEventError or an event, nothing else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cv_analytics.events import MAX_SQS_ID_CHARS, QueryEvent, ResponseEvent, parse_event, to_json
from cv_analytics.exceptions import InvalidEventError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
keys = st.sampled_from(
    ["eventType", "correlationId", "requestId", "timestamp", "sessionId", "query", "response",
     "metadata", "performance", "matchScore", "matchType", "reasoning"]
)  # fmt: skip
near_events = st.fixed_dictionaries(
    {"eventType": st.sampled_from(["query", "response", "other"]), "correlationId": st.text(max_size=300)},
    optional={
        "timestamp": st.integers(min_value=-(10**20), max_value=10**20) | st.floats(allow_nan=False),
        "query": st.text(max_size=30) | json_values,
        "metadata": st.dictionaries(st.sampled_from(["matchQuality", "sourcesUsed", "userAgent", "x"]), json_values),
        "performance": st.dictionaries(st.sampled_from(["totalTime", "llmTime", "cacheHit"]), json_values),
        "matchScore": json_values,
    },
)
bodies = (
    near_events
    | st.dictionaries(keys, json_values)
    | st.binary(max_size=200)
    | st.text(max_size=200)
    | st.integers(1, 3000).map(lambda n: '{"eventType":"query","x":' + "[" * n + "]" * n + "}")
)


def encoded(body: object) -> str | bytes | dict:
    if isinstance(body, dict):
        return json.dumps(body, allow_nan=True)
    return body  # type: ignore[return-value]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_parse_event_raises_only_invalid_event_error_and_what_it_accepts_round_trips(body):
    try:
        event = parse_event(encoded(body))
    except InvalidEventError:
        return
    assert isinstance(event, (QueryEvent, ResponseEvent))
    assert len(event.dedup_id) <= MAX_SQS_ID_CHARS and len(event.group_id) <= MAX_SQS_ID_CHARS
    again = parse_event(to_json(event))  # what the edge accepted, the worker accepts
    assert again.correlation_id == event.correlation_id and again.timestamp == event.timestamp


@settings(max_examples=150, deadline=None)
@given(near_events)
def test_dict_and_text_forms_of_a_body_get_the_same_verdict(body):
    outcomes = []
    for form in (body, json.dumps(body)):
        try:
            outcomes.append(parse_event(form).timestamp)
        except InvalidEventError as exc:
            outcomes.append(("invalid", exc.field))
    assert outcomes[0] == outcomes[1]
