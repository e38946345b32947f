"""Generated arguments into log_query/log_response: nothing escapes, each bad event counted once,
the good events logged beside them arrive."""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cv_analytics.client import AnalyticsClient
from cv_analytics.clock import ManualClock

from .doubles import MemoryQueue

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | st.binary(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=15,
)
timestamps = st.none() | st.integers(-(10**18), 10**18) | st.floats() | st.datetimes() | anything
query_calls = st.fixed_dictionaries(
    {"query": st.text(max_size=20) | anything},
    optional={
        "session_id": st.none() | st.text(max_size=300) | anything,
        "correlation_id": st.text(min_size=1, max_size=300),
        "metadata": st.none() | st.dictionaries(st.text(max_size=8), anything, max_size=3) | anything,
        "timestamp": timestamps,
    },
)
response_calls = st.fixed_dictionaries(
    {"correlation_id": st.text(max_size=300) | anything},
    optional={
        "response": st.none() | st.text(max_size=20) | anything,
        "total_time": st.none() | st.floats() | st.integers() | anything,
        "llm_time": st.none() | st.floats(),
        "cache_hit": anything,
        "performance": st.none() | st.dictionaries(st.sampled_from(["totalTime", "x"]), anything) | anything,
        "match_quality": st.none() | st.floats() | anything,
        "sources_used": st.none() | st.text(max_size=10) | st.lists(st.text(max_size=5)) | anything,
        "metadata": st.none() | st.dictionaries(st.text(max_size=5), anything, max_size=3),
        "timestamp": timestamps,
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(query_calls.map(lambda k: ("q", k)), response_calls.map(lambda k: ("r", k))),
                min_size=1, max_size=12))
def test_generated_calls_never_raise_and_never_cost_the_good_events_beside_them(generated):
    queue = MemoryQueue()
    with tempfile.TemporaryDirectory() as spool:
        client = AnalyticsClient(queue, spool_dir=spool, clock=ManualClock(), flush_interval=0.01)
        good: list[str] = []
        for index, (kind, kwargs) in enumerate(generated):
            if kind == "q":
                client.log_query(**kwargs)
            else:
                client.log_response(**kwargs)
            good.append(client.log_query(f"good {index}", session_id="fuzz"))
        assert client.flush(timeout=30)
        stats = client.stats()
        # every event is accounted for exactly once
        assert stats.sent + stats.invalid + stats.failed + stats.dropped == 2 * len(generated)
        arrived = {b["correlationId"] for b in queue.bodies() if b.get("query", "").startswith("good ")}
        assert set(good) <= arrived
        assert client.close(timeout=5)
