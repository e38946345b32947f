"""The contract messages end to end, as a user drives it: send → worker --drain → export."""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from cv_analytics.wiring import Settings, open_queue, open_store
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE
from cv_analytics.stores.models import InteractionStatus

from .conftest import exported

CURRENT = ("query-event.json", "response-event.json")
LEGACY = ("legacy-query-event.json", "legacy-response-event.json")


@pytest.mark.slow
@pytest.mark.parametrize("order", ["queries_first", "responses_first"])
def test_every_contract_message_becomes_one_interaction_in_either_order(cli, contract_dir, order):
    queries = [contract_dir / CURRENT[0], contract_dir / LEGACY[0]]
    responses = [contract_dir / CURRENT[1], contract_dir / LEGACY[1]]
    files = queries + responses if order == "queries_first" else responses + queries
    # each pair shares a correlation id inside the 5-minute dedup window: both halves must go through
    assert "sent 4 message(s)" in cli("send", *map(str, files)).stderr
    cli("worker", "--drain")

    rows = {row["correlationId"]: row for row in exported(cli)}
    assert set(rows) == {"6f1c2d8e-6a43-4c59-9a7e-2b1d3c4e5f60", "0b9e4f7a-1c2d-4e3f-8a9b-7c6d5e4f3a21"}
    current = rows["6f1c2d8e-6a43-4c59-9a7e-2b1d3c4e5f60"]
    assert current["status"] == "answered" and current["week"] == "2025-W46"
    assert current["query"] == "What is your experience with TypeScript?"
    assert current["totalTime"] == 234 and current["sourcesUsed"] == ["TypeScript", "Node.js", "Express"]
    assert current["sessionId"] == "session-001" and current["matchType"] == "full"
    legacy = rows["0b9e4f7a-1c2d-4e3f-8a9b-7c6d5e4f3a21"]
    assert legacy["status"] == "answered" and legacy["query"] == "Python experience"
    assert (legacy["matchType"], legacy["matchScore"]) == ("partial", 62)
    assert legacy["sessionId"] is None and legacy["totalTime"] is None

    status = json.loads(cli("status", "--json").stdout)
    assert status["store"]["totalInteractions"] == 2
    assert status["store"]["pendingQueries"] == status["store"]["pendingResponses"] == 0
    assert all(q["visible"] == 0 and q["inFlight"] == 0 for q in status["queues"])


@pytest.mark.slow
def test_duplicates_and_replays_count_each_interaction_once(cli, contract_dir):
    files = [str(contract_dir / name) for name in CURRENT + LEGACY]
    cli("send", *files)
    cli("send", *files)  # a duplicate inside the window: the queue drops it
    cli("worker", "--drain")
    cli("send", "--replay", *files)  # fresh dedup ids: the processor must drop them
    cli("send", "--replay", *files)
    cli("worker", "--drain")

    rows = exported(cli)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"answered"}
    csv_rows = list(csv.DictReader(io.StringIO(cli("export", "--format", "csv", "--week", "2025-W46").stdout)))
    assert len(csv_rows) == 2 and json.loads(csv_rows[0]["sourcesUsed"]) is not None
    assert exported(cli, "--week", "2026-W01") == []


@pytest.mark.slow
def test_bad_messages_are_refused_or_dead_lettered_and_lose_nothing_else(cli, cli_env, contract_dir, tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"eventType": "query", "correlationId": "big", "timestamp": 1, "query": "x" * 300_000}))
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "\n".join(
            [
                (contract_dir / CURRENT[0]).read_text().replace("\n", ""),
                '{"eventType": "query", "timestamp": 1763164800000, "query": "no id"}',
                "{this is not json",
                (contract_dir / CURRENT[1]).read_text().replace("\n", ""),
            ]
        )
    )
    result = cli("send", str(big), str(mixed), check=False)
    assert result.returncode == 1
    assert "big.json" in result.stderr and "over the 262144-byte queue limit" in result.stderr
    assert "sent 4 message(s)" in result.stderr

    cli("worker", "--drain")
    assert [r["status"] for r in exported(cli)] == ["answered"]
    status = json.loads(cli("status", "--json").stdout)
    dlq = next(q for q in status["queues"] if q["name"].endswith("dlq"))
    assert dlq["visible"] == 2

    reasons = sorted(m.attributes[FAILURE_REASON_ATTRIBUTE] for m in open_queue(Settings.from_env(cli_env)).dead_letter_queue.receive(10))
    assert "correlationId" in reasons[0] or "correlationId" in reasons[1]
    assert any("not valid JSON" in r for r in reasons)


def _write_pairs(path: pathlib.Path, n: int) -> None:
    lines = []
    for i in range(n):
        cid = f"00000000-0000-4000-8000-{i:012d}"
        lines.append(json.dumps({"eventType": "query", "correlationId": cid, "timestamp": 1_763_164_800_000 + i, "sessionId": f"s{i % 97}", "query": f"question {i}"}))
        lines.append(json.dumps({"eventType": "response", "correlationId": cid, "timestamp": 1_763_164_800_100 + i, "sessionId": f"s{i % 97}", "response": "answer", "metadata": {"matchQuality": 0.9, "sourcesUsed": ["Python"]}}))
    path.write_text("\n".join(lines))


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_processes_every_interaction_exactly_once(cli, cli_env, tmp_path):
    pairs = 15_000
    _write_pairs(tmp_path / "traffic.jsonl", pairs)
    cli("send", str(tmp_path / "traffic.jsonl"), timeout=300)
    env = {**cli_env, "CV_ANALYTICS_VISIBILITY_TIMEOUT": "2"}
    store = open_store(Settings.from_env(env))

    worker = subprocess.Popen([sys.executable, "-m", "cv_analytics", "worker"], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while store.counts().total_interactions < pairs // 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    done_at_kill = store.counts().total_interactions
    assert 0 < done_at_kill < pairs, "the worker must die mid-stream; raise the event count"

    restarted = subprocess.run(
        [sys.executable, "-m", "cv_analytics", "worker", "--drain"], env=env, capture_output=True, text=True, timeout=300
    )
    assert restarted.returncode == 0, restarted.stderr
    counts = store.counts()
    assert counts.total_interactions == pairs
    assert counts.interactions[InteractionStatus.ANSWERED] == pairs
    assert counts.pending_queries == counts.pending_responses == 0
    rows = exported(cli)
    assert len({r["correlationId"] for r in rows}) == len(rows) == pairs
    assert json.loads(cli("status", "--json").stdout)["queues"][1]["visible"] == 0  # nothing dead-lettered


@pytest.mark.slow
def test_sigterm_finishes_the_batch_in_hand_and_exits_cleanly(cli, cli_env, tmp_path):
    _write_pairs(tmp_path / "traffic.jsonl", 2_000)
    cli("send", str(tmp_path / "traffic.jsonl"))
    worker = subprocess.Popen(
        [sys.executable, "-m", "cv_analytics", "worker"], env=cli_env, stderr=subprocess.PIPE, text=True
    )
    store = open_store(Settings.from_env(cli_env))
    deadline = time.monotonic() + 60
    while store.counts().total_interactions == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0
    assert "SIGTERM: finishing the batch in hand" in stderr and "processed" in stderr
    # nothing was left in flight: a restart picks up exactly where it stopped
    assert json.loads(cli("status", "--json").stdout)["queues"][0]["inFlight"] == 0
    cli("worker", "--drain")
    assert store.counts().total_interactions == 2_000
