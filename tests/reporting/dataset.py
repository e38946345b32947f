"""A small fixed data set whose report figures are computed by hand in test_insights.py.

Week under report: 2026-W47 (Monday 16 – Sunday 22 November 2026, UTC); the
week before, 2026-W46, is there for trends. Events go through the real store
(record_events, then the orphan sweep), in both producer shapes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cv_analytics.clock import ManualClock
from cv_analytics.events import parse_event
from cv_analytics.skills import SkillsCatalog
from cv_analytics.stores.base import Store

WEEK = "2026-W47"
PREVIOUS_WEEK = "2026-W46"

#: A catalog of our own, so the expectations do not move when the packaged one is edited.
CATALOG_DATA = {
    "skills": [
        {"name": "TypeScript", "aliases": ["ts"]},
        {"name": "Kubernetes", "aliases": ["k8s"]},
        {"name": "Python"},
        {"name": "Go", "aliases": ["golang"], "case_sensitive": ["Go"]},
        {"name": "Rust"},
        {"name": "Terraform"},
        {"name": "Node.js", "aliases": ["node"]},
    ]
}
CATALOG = SkillsCatalog.from_mapping(CATALOG_DATA, source="tests")


def ms(day: int, hour: int, minute: int = 0, second: int = 0, milli: int = 0) -> int:
    """Milliseconds since the epoch of November ``day``, 2026, UTC."""
    return int(dt.datetime(2026, 11, day, hour, minute, second, tzinfo=dt.UTC).timestamp() * 1000) + milli


def query(cid: str, ts: int, text: str, session: str | None = None) -> dict[str, Any]:
    if session is None:  # the older producer: requestId, no session
        return {"eventType": "query", "requestId": cid, "timestamp": ts, "query": text}
    return {"eventType": "query", "correlationId": cid, "timestamp": ts, "sessionId": session, "query": text}


def response(
    cid: str,
    ts: int,
    session: str,
    quality: float,
    sources: list[str],
    perf: tuple[float, float, float, bool],
) -> dict[str, Any]:
    total, llm, retrieval, cache = perf
    return {
        "eventType": "response",
        "correlationId": cid,
        "timestamp": ts + 150,
        "sessionId": session,
        "response": "…",
        "performance": {"totalTime": total, "llmTime": llm, "retrievalTime": retrieval, "cacheHit": cache},
        "metadata": {"matchQuality": quality, "sourcesUsed": sources},
    }


def legacy_response(cid: str, ts: int, match_type: str, score: float) -> dict[str, Any]:
    return {
        "eventType": "response",
        "requestId": cid,
        "timestamp": ts + 12,
        "matchType": match_type,
        "matchScore": score,
        "reasoning": "older producer",
    }


def week_events() -> list[dict[str, Any]]:
    """2026-W47: twelve interactions (ten answered, one unanswered, one orphan response)."""
    events: list[dict[str, Any]] = []

    def pair(cid: str, ts: int, text: str, session: str, quality: float, sources: list[str], perf: tuple) -> None:
        events.extend([query(cid, ts, text, session), response(cid, ts, session, quality, sources, perf)])

    pair("c1", ms(16, 9, 15), "What is your experience with TypeScript?", "s1", 0.95, ["TypeScript", "Node.js"], (200, 150, 40, False))
    pair("c2", ms(16, 9, 40), "And k8s?", "s1", 0.30, [], (400, 300, 80, False))
    pair("c3", ms(17, 14, 5), "Kubernetes in production?", "s2", 0.55, ["Docker"], (300, 220, 60, True))
    events.extend([query("c4", ms(17, 14, 30), "Python experience"), legacy_response("c4", ms(17, 14, 30), "partial", 62)])
    events.extend([query("c5", ms(18, 8, 0), "Do you know Rust?"), legacy_response("c5", ms(18, 8, 0), "none", 10)])
    pair("c6", ms(18, 8, 30), "Tell me about Zig", "s3", 0.10, [], (250, 200, 30, True))
    pair("c7", ms(19, 17, 0), "What about TS and Python?", "s3", 0.80, ["TypeScript", "Python"], (100, 60, 20, True))
    pair("c12", ms(19, 9, 0), "k8s operators?", "s2", 0.60, [], (220, 150, 50, False))
    events.append(query("c8", ms(20, 10, 0), "Terraform?", "s4"))  # never answered
    events.append(response("c9", ms(21, 12, 0), "s5", 0.90, ["TypeScript"], (150, 100, 30, False)))  # never asked
    pair("c10", ms(22, 23, 59, 59, 999), "hello", "s4", 0.40, [], (120, 80, 25, False))
    pair("c11", ms(22, 10, 0), "What backend work have you done?", "s2", 0.70, ["Go"], (180, 120, 40, False))
    return events


def previous_week_events() -> list[dict[str, Any]]:
    """2026-W46: five Python questions and one TypeScript question, all fully matched."""
    events: list[dict[str, Any]] = []
    for n in range(5):
        ts = ms(10, 10, n)
        events += [query(f"p{n}", ts, "Python?", "old"), response(f"p{n}", ts, "old", 0.9, ["Python"], (100, 50, 20, False))]
    ts = ms(11, 10)
    events += [query("t0", ts, "TypeScript?", "old"), response("t0", ts, "old", 0.9, [], (100, 50, 20, False))]
    return events


def load(store: Store, clock: ManualClock) -> None:
    """Record both weeks through the store, then sweep the lone query and response."""
    clock.set(dt.datetime(2026, 11, 23, 0, 30, tzinfo=dt.UTC).timestamp())
    store.record_events([parse_event(e) for e in previous_week_events() + week_events()])
    clock.advance(3600)
    swept = store.sweep_orphans(900)
    assert (swept.unanswered, swept.orphan_responses) == (1, 1)
