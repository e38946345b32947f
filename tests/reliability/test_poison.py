"""Scenario 4: poison messages mixed into good traffic, dead-lettered on their first receive; redrive after a fix.

The poison goes in as producers send it: through the queue API (group and
deduplication ids as the client sets them; a poison message of a session in
that session's message group, ahead of the session's later good events) and
through ``cv-analytics send`` with a file of bodies. A ``cv-analytics worker``
process drains. Each poison message must reach the dead-letter queue on its
first receive with a reason naming the problem, without holding its session
back. Then the owner fixes what can be fixed (a producer that sent timestamps
in microseconds, an ``eventType`` in the wrong case) with the DLQ tools
(``dlq show --json`` → corrected bodies → ``dlq redrive --bodies``), and the
worker completes those interactions, each once.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass

import pytest

from cv_analytics.events import message_group_id
from cv_analytics.exceptions import MessageTooLargeError
from cv_analytics.queues.base import MAX_MESSAGE_BYTES, OutgoingMessage, content_dedup_id
from cv_analytics.wiring import Settings, Wiring

from .harness import (
    WEEK_START_MS,
    CliProcess,
    Survived,
    assert_exactly_once,
    chunks,
    contract_traffic,
    query_event,
    record_survived,
    response_event,
    tally_interactions,
    wait_until,
)

pytestmark = pytest.mark.slow

PAIRS = 1_000
SEED = 4


@dataclass(frozen=True)
class Poison:
    label: str
    body: str
    #: a fragment the dead letter's reason must contain (it names the problem)
    reason: str
    #: the session whose message group it travels in (None: a group of its own, as `send` routes non-events)
    session: str | None = None


def _poison(sessions: list[str]) -> list[Poison]:
    """Every kind of bad body a producer can put on the queue, most of them in a good session's group."""
    rng = random.Random(SEED)
    s = iter(sessions)
    q = query_event("c0ffee00-0000-4000-8000-000000000001", next(s), WEEK_START_MS + 5, "Do you know Go?")

    def event(cid: int, **changes: object) -> dict[str, object]:
        session = next(s)
        return {**q, "correlationId": f"c0ffee00-0000-4000-8000-{cid:012d}", "sessionId": session, **changes}

    deep_metadata: object = "leaf"
    for _ in range(40):
        deep_metadata = {"more": deep_metadata}
    poison = [
        Poison("malformed JSON (truncated)", json.dumps(event(2))[:-9], "not valid JSON"),
        Poison("not an object", json.dumps([event(3)]), "must be a JSON object"),
        Poison("JSON null", "null", "must be a JSON object"),
        Poison("unknown event type", json.dumps(event(4, eventType="click")), "'eventType'"),
        Poison("missing correlationId", json.dumps({k: v for k, v in event(5).items() if k != "correlationId"}), "'correlationId'"),
        Poison("missing query text", json.dumps({k: v for k, v in event(6).items() if k != "query"}), "field 'query'"),
        Poison("query text a number", json.dumps(event(7, query=42)), "field 'query'"),
        Poison("query text an object", json.dumps(event(8, query={"text": "Go?"})), "field 'query'"),
        Poison("timestamp a word", json.dumps(event(9, timestamp="yesterday")), "'timestamp'"),
        Poison("sessionId a number", json.dumps(event(10, sessionId=7)), "'sessionId'"),
        Poison("metadata 40 levels deep", json.dumps(event(11, metadata=deep_metadata)), "nested deeper than 32"),
        Poison("100,000 nested arrays", "[" * 100_000 + "]" * 100_000, "nested deeper than 32"),
        Poison("correlationId of 300 characters", json.dumps(event(12, correlationId="c" * 300)), "over the 256-character limit"),
        Poison("sessionId of 1,000 characters", json.dumps({**event(13), "sessionId": "s" * 1_000}), "at most 256 characters"),
        Poison("binary (random bytes as text)", rng.randbytes(512).decode("latin-1"), "not valid JSON"),
        Poison("control characters", "\x00\x01\x02\x1b[2J\x7f", "not valid JSON"),
        Poison("half a surrogate pair", json.dumps(event(14, query="emoji cut \ud83d")), "unicode string"),
    ]
    # most travel in the group of a session whose later good events follow them
    return [
        Poison(p.label, p.body, p.reason, None if i % 4 == 3 else sessions[(i * 7) % len(sessions)])
        for i, p in enumerate(poison)
    ]


def _fixable(count: int) -> tuple[list[dict[str, object]], list[dict[str, object]], list[str]]:
    """Interactions whose query a buggy producer release broke: (bad queries, their good responses, ids)."""
    queries, responses, ids = [], [], []
    for i in range(count):
        cid = f"f1xab1e0-0000-4000-8000-{i:012d}"
        session = f"fix-session-{i % 3}"
        at = WEEK_START_MS + 50_000 + i
        query = query_event(cid, session, at, "Have you used Terraform?")
        # half in microseconds (time.time_ns() // 1000), half with the type capitalised
        queries.append({**query, "timestamp": at * 1000} if i % 2 == 0 else {**query, "eventType": "Query"})
        responses.append(response_event(cid, session, at + 234))
        ids.append(cid)
    return queries, responses, ids


def _fix(body: str) -> str:
    """What the owner's jq does to a letter once the producer's bug is known."""
    event = json.loads(body)
    if event["timestamp"] > 10**14:
        event["timestamp"] //= 1000
    event["eventType"] = event["eventType"].lower()
    return json.dumps(event)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cv_analytics", *args], env=env, capture_output=True, text=True, timeout=120)


def _letters(env: dict[str, str]) -> list[dict[str, object]]:
    shown = _cli(env, "dlq", "show", "analytics", "--json", "--limit", "500")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_poison_is_dead_lettered_on_its_first_receive_and_fixed_letters_redrive_to_completion(env, data_dir, logs, tmp_path):
    traffic = contract_traffic(PAIRS, seed=SEED)
    events = [dict(e) for e in traffic.events]
    for event in events[3:60:11]:  # a wrong optional field is dropped, the interaction kept
        if event["eventType"] == "query":
            event["metadata"] = "not an object"
    sessions = sorted({str(e["sessionId"]) for e in events})
    poison = _poison(sessions)
    bad_queries, good_responses, fixable_ids = _fixable(8)

    def outgoing(event: dict[str, object]) -> OutgoingMessage:
        body = json.dumps(event)
        return OutgoingMessage(body, message_group_id(str(event["sessionId"])), f"{event['correlationId']}:{event['eventType']}")

    # Each poison message goes just before the first good event of its session, so all of that
    # session's traffic follows it in the same message group.
    messages = [outgoing(e) for e in events[: PAIRS * 2 - 400]]
    for p in poison:
        group = message_group_id(p.session) if p.session else f"raw-{content_dedup_id(p.body)[:16]}"
        letter = OutgoingMessage(p.body, group, content_dedup_id(p.body))
        first = next((i for i, m in enumerate(messages) if m.group_id == group), len(messages))
        messages.insert(first, letter)
    messages[PAIRS:PAIRS] = [
        OutgoingMessage(json.dumps(e), message_group_id(str(e["sessionId"])), content_dedup_id(json.dumps(e)))
        for e in [*bad_queries, *good_responses]
    ]

    # the rest of the good traffic and more poison through `cv-analytics send`, the way a file replay goes
    file_lines = [json.dumps(e).encode() for e in events[PAIRS * 2 - 400 :]]
    file_poison = {
        "malformed line": (b'{"eventType": "query", "correlationId": ', "not valid JSON"),
        "invalid event line": (json.dumps({**events[-1], "correlationId": "l1ne-0001", "eventType": "response", "timestamp": -5}).encode(), "'timestamp'"),
    }
    refused_lines = {"not UTF-8": b'{"query": "\xff\xfe"}', "over 256 KiB": b'{"query": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'}
    for at, line in zip((7, 150, 230, 390), [*(p for p, _ in file_poison.values()), *refused_lines.values()], strict=True):
        file_lines.insert(at, line)
    replay = tmp_path / "replay.jsonl"
    replay.write_bytes(b"\n".join(file_lines) + b"\n")

    wiring = Wiring(Settings.from_env({}, data_dir=data_dir))
    queue = wiring.queue()
    assert queue.dead_letter_queue is not None
    with CliProcess(env, "worker", "--wait", "1", log_dir=logs) as worker:
        for chunk in chunks(messages, 97):
            assert all(o.ok for o in queue.send_many(chunk)), "the queue refused part of the traffic"
        with pytest.raises(MessageTooLargeError):  # a body over the limit is the producer's error, at once
            queue.send(json.dumps({**events[0], "query": "x" * MAX_MESSAGE_BYTES}), group_id="g", dedup_id="too-large")
        sent = _cli(env, "send", str(replay))
        assert sent.returncode == 1, sent.stderr  # 1: something was refused, the rest sent
        refusals = [line for line in sent.stderr.splitlines() if line.startswith("refused ")]
        assert len(refusals) == 2 and f"{replay}:231: not UTF-8" in sent.stderr and f"{replay}:391: body is" in sent.stderr

        expected_letters = len(poison) + len(file_poison) + len(bad_queries)
        dlq = queue.dead_letter_queue
        wait_until(lambda: _depth(queue) == 0 and _depth(dlq) == expected_letters, 60, what="the queue drained into store and DLQ")
        drained = tally_interactions(wiring.store, traffic.correlation_ids)
        letters = _letters(env)

        # -- the fix: correct the broken producer's letters and send only those back --
        broken = [letter for letter in letters if "(microseconds?)" in str(letter["reason"]) or "got 'Query'" in str(letter["reason"])]
        fixed = tmp_path / "fixed.json"
        fixed.write_text(json.dumps([{**letter, "body": _fix(str(letter["body"]))} for letter in broken]), encoding="utf-8")
        redriven = _cli(env, "dlq", "redrive", "analytics", "--bodies", str(fixed))
        wait_until(
            lambda: _complete(tally_interactions(wiring.store, fixable_ids)) and _depth(queue) == 0,
            60,
            what="the redriven letters completed",
        )
        again = _cli(env, "dlq", "redrive", "analytics", "--bodies", str(fixed))  # the same file twice: nothing moves

        # an unfixed letter redriven comes straight back, on its first receive again
        malformed = next(letter for letter in letters if str(letter["reason"]).startswith("event body is not valid JSON"))
        unfixed = _cli(env, "dlq", "redrive", "analytics", "--id", str(malformed["messageId"]))
        wait_until(lambda: _depth(queue) == 0 and _depth(dlq) == expected_letters - len(broken), 60, what="the unfixed letter back in the DLQ")
        after = _letters(env)
        worker_alive = worker.alive()
        stopped = worker.terminate()

    everything = tally_interactions(wiring.store, [*traffic.correlation_ids, *fixable_ids])
    firsts = [letter["receiveCount"] for letter in letters]
    record_survived(
        Survived(
            "4. poison messages",
            f"{len(poison) + len(file_poison)} poison messages (malformed, invalid, wrong types, nested 40 and "
            f"100,000 deep, oversized ids, binary, half a surrogate pair), most in good sessions' "
            f"groups; {len(broken)} broken by a producer bug, fixed and redriven with `dlq redrive --bodies`",
            f"{PAIRS:,} pairs (10 % responses first) through the queue API and `cv-analytics send`",
            lost=everything.lost,
            duplicated=everything.duplicated,
            notes=f"{sum(n == 1 for n in firsts)} of {len(firsts)} letters dead-lettered on their first receive "
            f"(a redriven unfixed one again on its first); "
            f"2 bodies refused at the producer (over 256 KiB, not UTF-8)",
        )
    )

    assert drained.exactly_once and drained.arrived == PAIRS, drained  # the good traffic, before any fix
    assert len(letters) == expected_letters
    by_body = {str(letter["body"]): letter for letter in letters}
    for p in poison:
        letter = by_body[p.body]
        assert letter["receiveCount"] == 1, (p.label, letter)
        assert p.reason in str(letter["reason"]), (p.label, letter["reason"])
        assert letter["sourceQueue"] == queue.name and (p.session is None or letter["groupId"] == message_group_id(p.session))
    for line, reason in file_poison.values():
        assert reason in str(by_body[line.decode()]["reason"]) and by_body[line.decode()]["receiveCount"] == 1
    assert len(broken) == len(bad_queries) and all(letter["receiveCount"] == 1 for letter in broken)

    assert redriven.returncode == 0 and f"moved {len(broken)} message(s) back" in redriven.stderr, redriven.stderr
    assert again.returncode != 0 and again.stderr.strip().splitlines()[-1].startswith("error: "), again.stderr
    assert unfixed.returncode == 0 and "moved 1 message(s)" in unfixed.stderr, unfixed.stderr
    assert set(firsts) == {1} and len(after) == expected_letters - len(broken) and {a["receiveCount"] for a in after} == {1}, after
    assert next(a for a in after if a["messageId"] == malformed["messageId"])["reason"] == malformed["reason"]
    assert worker_alive and stopped == 0, worker.stderr()[-3000:]
    assert "Traceback" not in worker.stderr()
    assert_exactly_once(everything, "good traffic and the fixed letters")


def _depth(queue) -> int:
    counts = queue.attributes()
    return counts.visible + counts.in_flight + counts.delayed


def _complete(tally) -> bool:
    """Every one of these interactions stored once (the others in the store are not this tally's)."""
    return tally.lost == 0 and tally.duplicated == 0
