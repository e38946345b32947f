"""The tallies every scenario ends with: they must see a loss, a duplicate and a stranger, or the suite proves nothing."""

from __future__ import annotations

import json

from cv_analytics.events import parse_event
from cv_analytics.stores.memory import MemoryStore

from .harness import Survived, contract_traffic, record_survived, tally_interactions
from .table import render


def _store_with(traffic, skip: set[str] = frozenset()):
    store = MemoryStore()
    store.record_events([parse_event(json.dumps(e)) for e in traffic.events if e["correlationId"] not in skip])
    return store


def test_traffic_interleaves_sessions_and_sends_a_tenth_of_responses_first():
    traffic = contract_traffic(1_000, seed=3)
    assert len(traffic) == 2_000 and len(set(traffic.correlation_ids)) == 1_000
    firsts = {}
    for event in traffic.events:
        firsts.setdefault(event["correlationId"], event["eventType"])
    responses_first = sum(kind == "response" for kind in firsts.values())
    assert 70 <= responses_first <= 130
    assert traffic.events[0]["sessionId"] != traffic.events[2]["sessionId"]


def test_tally_counts_each_interaction_once_and_sees_what_is_missing_or_foreign():
    traffic = contract_traffic(200, seed=1)
    complete = tally_interactions(_store_with(traffic), traffic.correlation_ids)
    assert complete.exactly_once and complete.arrived == 200

    missing = tally_interactions(_store_with(traffic, skip=set(traffic.correlation_ids[:3])), traffic.correlation_ids)
    assert (missing.lost, missing.duplicated, missing.exactly_once) == (3, 0, False)

    foreign = tally_interactions(_store_with(traffic), traffic.correlation_ids[:-1])
    assert (foreign.unexpected, foreign.exactly_once) == (1, False)


def test_a_lone_query_is_not_an_arrived_interaction():
    traffic = contract_traffic(10, seed=2, responses_first=0)
    store = MemoryStore()
    store.record_events([parse_event(json.dumps(e)) for e in traffic.events if e["eventType"] == "query"])
    store.sweep_orphans(0)
    tally = tally_interactions(store, traffic.correlation_ids)
    assert tally.lost == 10 and tally.arrived == 0


def test_rows_are_kept_only_where_asked_and_render_as_the_readme_table(tmp_path, monkeypatch):
    row = Survived("1. kill -9 worker", "SIGKILL ×10", "100,000 events", lost=0, duplicated=0, notes="seed 7")
    monkeypatch.delenv("CV_ANALYTICS_FAULTS_OUT", raising=False)  # make faults sets it for the whole run
    record_survived(row)  # no directory named: nothing written, nothing raised
    monkeypatch.setenv("CV_ANALYTICS_FAULTS_OUT", str(tmp_path))
    record_survived(row)
    [kept] = tmp_path.glob("*.json")
    table = render([json.loads(kept.read_text())])
    assert "| 1. kill -9 worker | embedded | SIGKILL ×10 | 100,000 events | 0 | 0 | seed 7 |" in table
