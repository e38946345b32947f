"""Dropped events are counted on disk beside the spool, where ``status`` (another process) reads them."""

from __future__ import annotations

import subprocess
import sys

from cv_analytics.client import spool_status
from cv_analytics.client.drops import DROPS_FILE, DropTotals, read_drops, record_drops

from .doubles import wait_until

#: Adds one drop per call, argv[3] times, to the spool directory argv[1], at the time argv[2] (ms).
_ADDER = """
import sys
from cv_analytics.client.drops import record_drops
for _ in range(int(sys.argv[3])):
    record_drops(sys.argv[1], 1, at_ms=int(sys.argv[2]))
"""


def test_drops_at_the_spool_bound_reach_spool_status_while_the_client_runs_and_add_up_across_clients(
    make_client, queue, spool_dir, clock
):
    queue.down = True
    client = make_client(max_spool_bytes=8 * 1024, spool_segment_bytes=2 * 1024)
    for i in range(300):
        client.log_query(f"question number {i} about distributed systems")
    assert wait_until(lambda: client.stats().spooled + client.stats().dropped == 300)
    dropped = client.stats().dropped
    assert dropped > 0
    clock.advance(1.5)  # past the once-a-second bound on writing the count
    assert wait_until(lambda: spool_status(spool_dir).dropped == dropped), spool_status(spool_dir)
    status = spool_status(spool_dir)
    assert status.last_drop_ms is not None and status.last_drop_ms <= int(clock.now() * 1000)
    assert status.to_json()["dropped"] == dropped and status.to_json()["lastDrop"] == status.last_drop

    client.close(timeout=1)  # still down: nothing more is dropped, nothing is counted twice
    assert spool_status(spool_dir).dropped == dropped

    second = make_client(max_spool_bytes=1, max_buffer=10, batch_size=10)  # a full spool: every spill drops
    for i in range(50):
        second.log_query(f"another question {i}")
    second.close(timeout=1)  # what is dropped at close is recorded at close
    assert second.stats().dropped > 0
    assert spool_status(spool_dir).dropped == dropped + second.stats().dropped


def test_several_processes_add_their_drops_without_losing_one(tmp_path):
    adders = [
        subprocess.Popen([sys.executable, "-c", _ADDER, str(tmp_path), str(1_000 + n), "200"]) for n in range(4)
    ]
    assert [p.wait(60) for p in adders] == [0, 0, 0, 0]
    assert read_drops(tmp_path) == DropTotals(dropped=800, last_drop_ms=1_003)


def test_reading_creates_nothing_and_a_damaged_file_counts_as_nothing_dropped(tmp_path):
    missing = tmp_path / "spool"
    assert read_drops(missing) == DropTotals() and not missing.exists()
    assert spool_status(missing).dropped == 0 and not missing.exists()

    missing.mkdir()
    (missing / DROPS_FILE).write_text('{"dropped": "many", "lastDropMs": "yesterday", "padding": "' + "x" * 100 + '"}')
    assert read_drops(missing) == DropTotals()
    record_drops(missing, 3, at_ms=42)  # starts over from what it can read, and leaves a file it can read
    assert read_drops(missing) == DropTotals(3, 42)
    record_drops(missing, 0, at_ms=99)  # nothing dropped: nothing written
    assert read_drops(missing) == DropTotals(3, 42)
