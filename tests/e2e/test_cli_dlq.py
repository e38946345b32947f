"""``dlq list|show|redrive|purge``: what a user does after a failure, as they do it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cv_analytics.events import QueryEvent, ResponseEvent, to_json
from cv_analytics.queues.base import OutgoingMessage
from cv_analytics.wiring import Settings, open_queue

from .conftest import exported

TS = 1_763_164_800_000


def _dead_letter_pairs(data_dir: str, n: int) -> None:
    """``n`` good query/response pairs in the analytics DLQ, as a bug in a worker would have left them."""
    queue = open_queue(Settings.from_env({}, data_dir=data_dir))
    messages = []
    for i in range(n):
        cid = f"00000000-0000-4000-8000-{i:012d}"
        for event in (
            QueryEvent(correlation_id=cid, timestamp=TS + i, session_id=f"s{i}", query=f"q {i}"),
            ResponseEvent(correlation_id=cid, timestamp=TS + i + 100, session_id=f"s{i}", response="a"),
        ):
            messages.append(OutgoingMessage(to_json(event), event.group_id, event.dedup_id))
    for start in range(0, len(messages), 10):
        queue.send_batch(messages[start : start + 10])
    while batch := queue.receive(10):
        for message in batch:
            queue.dead_letter(message, "store schema bug (fixed since)")


@pytest.mark.slow
def test_redrive_after_a_fix_completes_each_interaction_exactly_once(cli, cli_env):
    _dead_letter_pairs(cli_env["CV_ANALYTICS_DATA_DIR"], 5)
    letters = json.loads(cli("dlq", "list", "--json").stdout)
    assert len(letters) == 10 and {letter["reason"] for letter in letters} == {"store schema bug (fixed since)"}
    assert all("body" not in letter for letter in letters)

    first_pair = [letter["messageId"] for letter in letters if letter["groupId"] == letters[0]["groupId"]]
    shown = json.loads(cli("dlq", "show", "analytics", first_pair[0], "--json").stdout)
    assert shown["messageId"] == first_pair[0] and json.loads(shown["body"])["eventType"] == "query"

    moved = cli("dlq", "redrive", "analytics", *sum((["--id", m] for m in first_pair), []))
    assert "moved 2 message(s)" in moved.stderr
    cli("worker", "--drain")
    assert len(exported(cli)) == 1
    assert len(json.loads(cli("dlq", "list", "--json").stdout)) == 8

    cli("dlq", "redrive")  # the rest, and once more: nothing left to double-count
    cli("worker", "--drain")
    cli("dlq", "redrive")
    cli("worker", "--drain")
    interactions = exported(cli)
    assert len(interactions) == 5 and len({i["correlationId"] for i in interactions}) == 5
    assert all(i["status"] == "answered" for i in interactions)
    assert json.loads(cli("dlq", "list", "--json").stdout) == []


@pytest.mark.slow
def test_purge_asks_unless_yes_and_an_unknown_id_or_queue_is_one_error_line(cli, cli_env):
    _dead_letter_pairs(cli_env["CV_ANALYTICS_DATA_DIR"], 1)
    purge = [sys.executable, "-m", "cv_analytics", "dlq", "purge"]
    refused = subprocess.run(purge, env=cli_env, input="n\n", capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "[y/N]" in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("error: not confirmed")
    closed = subprocess.run(purge, env=cli_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert closed.returncode != 0 and len(json.loads(cli("dlq", "list", "--json").stdout)) == 2

    for args in (["dlq", "show", "analytics", "no-such-id"], ["dlq", "redrive", "--id", "no-such-id"], ["dlq", "list", "bogus"]):
        result = cli(*args, check=False)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: "), result.stderr

    confirmed = subprocess.run(purge, env=cli_env, input="y\n", capture_output=True, text=True, timeout=60)
    assert confirmed.returncode == 0 and "purged 2 dead letter(s)" in confirmed.stderr
    assert json.loads(cli("dlq", "list", "--json").stdout) == []
    assert "purged 0" in cli("dlq", "purge", "--yes").stderr


@pytest.mark.slow
def test_redrive_with_edited_bodies_sends_the_corrected_letters_and_refuses_a_bad_file(cli, cli_env, tmp_path):
    _dead_letter_pairs(cli_env["CV_ANALYTICS_DATA_DIR"], 2)
    letters = json.loads(cli("dlq", "show", "--json").stdout)
    first = [letter for letter in letters if json.loads(letter["body"])["correlationId"].endswith("0")]
    edited = [{**letter, "body": letter["body"].replace('"q 0"', '"q 0, corrected"')} for letter in first]
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(edited))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"messageId": "m"}]))

    for args in (
        ["--bodies", str(fixed), "--id", first[0]["messageId"]],
        ["--bodies", str(tmp_path / "missing.json")],
        ["--bodies", str(bad)],
    ):
        refused = cli("dlq", "redrive", *args, check=False)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines()[-1].startswith("error: --bodies"), refused.stderr
    assert len(json.loads(cli("dlq", "list", "--json").stdout)) == 4  # nothing moved by a refused command

    moved = cli("dlq", "redrive", "--bodies", str(fixed))
    assert "moved 2 message(s) back to 'analytics' with their edited bodies" in moved.stderr
    cli("worker", "--drain")
    [interaction] = exported(cli)
    assert interaction["query"] == "q 0, corrected" and interaction["status"] == "answered"
    assert len(json.loads(cli("dlq", "list", "--json").stdout)) == 2
