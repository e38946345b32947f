"""send_many: any number of messages in one call, with send_batch's per-entry outcomes.

The behavioural part runs on every backend (SQS on moto sends ten per request;
the embedded queue stores up to SEND_CHUNK per transaction). The partial
failure rules are checked on the base class and on the SQLite override.
"""

from __future__ import annotations

import sqlite3

import pytest

from cv_analytics.exceptions import QueueUnavailableError
from cv_analytics.queues.sqlite import queue as sqlite_queue
from cv_analytics.queues.base import MAX_MESSAGE_BYTES, UNAVAILABLE_ERROR_CODE, OutgoingMessage
from tests.client.doubles import MemoryQueue

from .conftest import SQLiteQueueEnv
from .helpers import bodies, drain


def _messages(count: int, groups: int = 3, prefix: str = "m") -> list[OutgoingMessage]:
    return [OutgoingMessage(f"{prefix}{i}", f"g{i % groups}", f"{prefix}{i}") for i in range(count)]


def test_send_many_takes_dozens_at_once_and_keeps_each_groups_order(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    sent = _messages(35)

    outcomes = q.send_many(sent)

    assert [o.index for o in outcomes] == list(range(35))
    assert all(o.ok for o in outcomes), outcomes
    received = drain(q)
    assert sorted(bodies(received)) == sorted(m.body for m in sent)
    for group in ("g0", "g1", "g2"):
        assert [m.body for m in received if m.group_id == group] == [m.body for m in sent if m.group_id == group]


def test_send_many_refuses_impossible_entries_alone_and_sends_the_rest(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    sent = _messages(15, groups=1)
    sent[3] = OutgoingMessage("x" * (MAX_MESSAGE_BYTES + 1), "g0", "too-big")
    sent[12] = OutgoingMessage("no group", None, "no-group")

    outcomes = q.send_many(sent)

    assert [i for i, o in enumerate(outcomes) if not o.ok] == [3, 12]
    assert (outcomes[3].error_code, outcomes[3].sender_fault) == ("MessageTooLong", True)
    assert (outcomes[12].error_code, outcomes[12].sender_fault) == ("MissingParameter", True)
    assert bodies(drain(q)) == [m.body for i, m in enumerate(sent) if i not in (3, 12)]


def test_send_many_of_large_messages_stays_under_the_batch_byte_limit(queue_env):
    # five 100 kB messages: more than SQS takes in one 256 KiB request
    q = queue_env.make_queue("analytics.fifo")
    sent = [OutgoingMessage(str(i) * 100_000, "g", f"d{i}") for i in range(5)]

    outcomes = q.send_many(sent)

    assert all(o.ok for o in outcomes), outcomes
    assert bodies(drain(q)) == [m.body for m in sent]


def test_a_duplicate_inside_one_send_many_call_is_stored_once(queue_env):
    q = queue_env.make_queue("analytics.fifo")
    sent = _messages(12, groups=1)
    sent.append(OutgoingMessage("m0 again", "g0", "m0"))  # same deduplication id as the first

    outcomes = q.send_many(sent)

    assert all(o.ok for o in outcomes)
    assert bodies(drain(q)) == [m.body for m in sent[:12]]


def test_send_many_to_an_unreachable_queue_returns_retryable_failures_instead_of_raising(queue_env):
    if queue_env.unavailable is None:
        pytest.skip(f"the {queue_env.name} backend has no unavailable")
    q = queue_env.make_queue("analytics.fifo")
    sent = _messages(25)

    with queue_env.unavailable():
        outcomes = q.send_many(sent)

    assert len(outcomes) == 25
    assert all(o.error_code == UNAVAILABLE_ERROR_CODE and not o.sender_fault and not o.ok for o in outcomes)
    assert q.attributes().visible == 0
    # nothing was stored, so the retry stores everything
    assert all(o.ok for o in q.send_many(sent))
    assert len(drain(q)) == 25


def test_base_send_many_stops_at_the_first_unreachable_request_so_nothing_overtakes_it():
    q = MemoryQueue()
    q.unreachable_requests = {2}

    outcomes = q.send_many(_messages(25, groups=1))

    assert [o.ok for o in outcomes] == [True] * 10 + [False] * 15
    assert {o.error_code for o in outcomes[10:]} == {UNAVAILABLE_ERROR_CODE}
    assert not any(o.sender_fault for o in outcomes)
    assert [o.index for o in outcomes] == list(range(25))
    assert q.send_calls == 2  # the third request was not attempted
    assert [m.body for m in q.stored] == [f"m{i}" for i in range(10)]


def test_base_send_many_with_an_impossible_entry_still_reports_every_index():
    q = MemoryQueue()
    sent = _messages(14, groups=1)
    sent[11] = OutgoingMessage("no dedup id", "g0", None)  # the queue has no content-based dedup

    outcomes = q.send_many(sent)

    assert [o.index for o in outcomes] == list(range(14))
    assert [i for i, o in enumerate(outcomes) if not o.ok] == [11]
    assert outcomes[11].sender_fault


# -- the embedded queue: transactions -------------------------------------------------


@pytest.fixture
def sqlite_env(tmp_path):
    env = SQLiteQueueEnv(tmp_path)
    yield env
    env.close()


def test_sqlite_send_many_commits_one_transaction_per_send_chunk(sqlite_env, monkeypatch):
    monkeypatch.setattr(sqlite_queue, "SEND_CHUNK", 5)
    q = sqlite_env.make_queue("analytics.fifo")
    statements: list[str] = []
    sqlite_env.backend.connection().set_trace_callback(statements.append)

    outcomes = q.send_many(_messages(12))

    sqlite_env.backend.connection().set_trace_callback(None)
    assert all(o.ok for o in outcomes)
    assert statements.count("COMMIT") == 3
    assert len(drain(q)) == 12


def test_sqlite_send_many_keeps_what_committed_and_returns_the_rest_for_a_retry(sqlite_env, monkeypatch):
    monkeypatch.setattr(sqlite_queue, "SEND_CHUNK", 5)
    q = sqlite_env.make_queue("analytics.fifo")
    real_send = type(q)._send_batch
    calls = []

    def second_transaction_fails(self, messages):
        calls.append(len(messages))
        if len(calls) == 2:
            raise QueueUnavailableError("locked (test fault)")
        return real_send(self, messages)

    monkeypatch.setattr(type(q), "_send_batch", second_transaction_fails)
    sent = _messages(12, groups=1)

    outcomes = q.send_many(sent)

    assert calls == [5, 5]  # the third transaction was not attempted
    assert [o.ok for o in outcomes] == [True] * 5 + [False] * 7
    assert {o.error_code for o in outcomes[5:]} == {UNAVAILABLE_ERROR_CODE}
    assert bodies(drain(q)) == [m.body for m in sent[:5]]


def test_sqlite_send_many_finds_duplicates_and_groups_beyond_one_in_list(sqlite_env):
    # more distinct deduplication ids and groups than one IN (...) list binds
    q = sqlite_env.make_queue("analytics.fifo")
    first = [OutgoingMessage(f"a{i}", f"g{i}", f"d{i}") for i in range(1200)]
    first_ids = [o.message_id for o in q.send_many(first)]

    again = [OutgoingMessage(f"dup{i}", f"g{i}", f"d{i}") for i in range(1200)]
    more = [OutgoingMessage(f"b{i}", f"g{i}", f"e{i}") for i in range(1200)]
    outcomes = q.send_many(again + more)

    assert [o.message_id for o in outcomes[:1200]] == first_ids  # duplicates answer with the first copy's id
    assert all(o.ok for o in outcomes[1200:])
    assert q.attributes().visible == 2400
    received = drain(q, limit=3000)
    assert [m.body for m in received if m.group_id == "g777"] == ["a777", "b777"]
    assert len(sqlite_env.backend.connection().execute("SELECT gid FROM queue_groups").fetchall()) == 0


def test_sqlite_send_many_stays_within_the_host_parameter_limit_of_older_sqlite_builds(sqlite_env):
    # SQLite before 3.32 binds at most 999 parameters per statement: 90 message rows
    q = sqlite_env.make_queue("analytics.fifo")
    sqlite_env.backend.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    sent = _messages(301, groups=7)

    outcomes = q.send_many(sent)

    assert all(o.ok for o in outcomes)
    assert len({o.message_id for o in outcomes}) == 301
    received = drain(q, limit=1000)
    for group in (f"g{i}" for i in range(7)):
        assert [m.body for m in received if m.group_id == group] == [m.body for m in sent if m.group_id == group]
