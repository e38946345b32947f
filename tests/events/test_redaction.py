"""PII redaction: e-mail addresses and phone numbers out of stored query text, nothing else touched."""

from __future__ import annotations

import pytest

from cv_analytics.events import QueryEvent, ResponseEvent, to_json
from cv_analytics.events.redaction import redact_pii
from cv_analytics.processor import Worker
from cv_analytics.queues.base import OutgoingMessage, QueueConfig
from cv_analytics.queues.sqlite import SQLiteQueueBackend
from cv_analytics.stores.sqlite import SQLiteStore
from cv_analytics.wiring import Settings

TS = 1_763_164_800_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe+cv@example.co.uk now", "mail [email] now"),
        ("reach me at a_b@mail-server.io.", "reach me at [email]."),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("call (415) 555-2671", "call [phone]"),
        ("or 06 12 34 56 78", "or [phone]"),
        ("+49-151-23456789", "[phone]"),
        ("both: x@y.com, +1 415 555 2671", "both: [email], [phone]"),
    ],
)
def test_emails_and_phone_numbers_are_replaced(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Python since 2015, 5+ years of Go",
        "worked there 2019-2023 and 2012 – 2016",
        "version 3.11.7 and 1.2.3.4",
        "team of 120 people, 40% growth",
        "is @handle on GitHub, not an address",
        "order 12345678",  # eight digits: too short for a phone number without a country code
        "",
    ],
)
def test_other_text_is_untouched(text: str) -> None:
    assert redact_pii(text) == text


def test_hostile_input_costs_linear_time() -> None:
    text = ("1 " * 50_000) + ("a@" * 50_000)
    assert redact_pii(text)  # returns (no catastrophic backtracking) and keeps what is not PII


def test_setting_is_off_by_default_and_named_in_errors() -> None:
    assert Settings.from_env({}).redact_pii is False
    assert Settings.from_env({"CV_ANALYTICS_REDACT_PII": "1"}).redact_pii is True
    with pytest.raises(Exception, match="CV_ANALYTICS_REDACT_PII"):
        Settings.from_env({"CV_ANALYTICS_REDACT_PII": "maybe"})  # named in the error


@pytest.mark.parametrize("redact", [True, False])
def test_worker_stores_the_redacted_query_only_when_asked(tmp_path, redact: bool) -> None:
    queue = SQLiteQueueBackend(tmp_path / "queues.db").queue("analytics", QueueConfig(fifo=True, content_based_dedup=True))
    store = SQLiteStore(tmp_path / "store.db")
    question = "Does she know Kubernetes? Send it to hr@acme.example or +1 (415) 555-2671"
    query = QueryEvent(correlation_id="c1", timestamp=TS, session_id="s", query=question)
    response = ResponseEvent(correlation_id="c1", timestamp=TS + 50, session_id="s", response="yes")
    queue.send_batch([OutgoingMessage(to_json(e), e.group_id, e.dedup_id) for e in (query, response)])
    Worker(queue, store, wait_seconds=0, redact_pii=redact).run(drain=True)
    [stored] = list(store.iter_interactions())
    if redact:
        assert stored.query == "Does she know Kubernetes? Send it to [email] or [phone]"
    else:
        assert stored.query == question
