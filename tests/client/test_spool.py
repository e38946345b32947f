"""The disk spool on its own: order, resumption, bounds, damage, and ownership by lock."""

from __future__ import annotations

import json
import pathlib

import pytest

from cv_analytics.client.spool import RECORDS_PER_LINE, Spool
from cv_analytics.clock import ManualClock

from .doubles import segments


def _spool(directory: pathlib.Path, clock: ManualClock | None = None, **options: int) -> Spool:
    options.setdefault("max_bytes", 10 * 1024 * 1024)
    options.setdefault("segment_bytes", 64 * 1024)
    spool = Spool(directory, clock=clock or ManualClock(), **options)
    spool.open()
    return spool


def _drain(spool: Spool, chunk: int = 7) -> list:
    out = []
    while taken := spool.take(chunk):
        out.extend(record for record, _ in taken)
        spool.commit(len(taken))
    return out


def test_records_come_back_in_append_order_across_lines_and_segments(tmp_path):
    spool = _spool(tmp_path, segment_bytes=4 * 1024)
    records = [["q", i, f"cid-{i}", None, f"question {i}", None] for i in range(2_000)]
    for start in range(0, 2_000, 300):
        assert spool.append(records[start : start + 300]) == (len(records[start : start + 300]), 0)
    assert len(segments(tmp_path)) > 5
    assert _drain(spool) == records
    assert segments(tmp_path) == []  # replayed segments are deleted
    assert not spool.has_backlog()


def test_taken_but_uncommitted_records_are_replayed_by_the_next_owner(tmp_path):
    first = _spool(tmp_path)
    first.append([[i] for i in range(RECORDS_PER_LINE + 50)])
    taken = first.take(10)
    first.commit(5)  # 5 sent; 5 more taken but their send never finished
    assert [r for r, own in taken] == [[i] for i in range(10)] and all(own for _, own in taken)
    first.close()  # releases the lock, as a crash would

    second = _spool(tmp_path)
    assert second.has_backlog(foreign_only=True)
    rest = second.take(1_000)
    assert [r for r, _ in rest] == [[i] for i in range(5, RECORDS_PER_LINE + 50)]
    assert not any(own for _, own in rest)


def test_a_live_owners_segments_are_not_claimed_by_another_spool(tmp_path):
    owner = _spool(tmp_path)
    owner.append([["mine"]])
    other = _spool(tmp_path)
    assert other.take(10) == []
    assert other.claim_leftovers() == 0
    owner.close()
    assert other.claim_leftovers() == 1
    assert [r for r, _ in other.take(10)] == [["mine"]]


def test_the_size_bound_keeps_the_oldest_records_and_counts_the_rest(tmp_path):
    spool = _spool(tmp_path, max_bytes=2_000)
    records = [["q", i, "x" * 30] for i in range(200)]
    written, dropped = spool.append(records)
    assert written + dropped == 200 and dropped > 0
    assert sum(p.stat().st_size for p in segments(tmp_path)) <= 2_000
    assert _drain(spool) == records[:written]
    # the bound counts what is on disk now: room again once replayed
    assert spool.append(records[:5]) == (5, 0)


def test_a_torn_last_line_and_a_corrupt_line_are_skipped_and_counted(tmp_path):
    writer = _spool(tmp_path)
    writer.append([["a"], ["b"]])
    writer.close()
    (segment,) = segments(tmp_path)
    with segment.open("ab") as f:
        f.write(b"not json at all\n")
        f.write(json.dumps([["c"]]).encode() + b"\n")
        f.write(b'[["torn", "by a crash mid-wri')

    reader = _spool(tmp_path)
    assert _drain(reader) == [["a"], ["b"], ["c"]]
    assert reader.corrupt_lines == 2
    assert segments(tmp_path) == []


def test_replay_positions_are_persisted_so_a_crash_resends_little(tmp_path):
    clock = ManualClock()
    spool = _spool(tmp_path, clock=clock)
    spool.append([[i] for i in range(100)])
    spool.take(40)
    clock.advance(5)  # past the persist interval: the position is written on this commit
    spool.commit(40)
    # a crash now (no close): the next owner starts from the persisted position
    for seg in (*spool._foreign, *spool._own):
        import os

        os.close(seg.fd)
    successor = _spool(tmp_path)
    assert [r for r, _ in successor.take(1_000)] == [[i] for i in range(40, 100)]


def test_records_that_are_not_json_go_through_the_encoder(tmp_path):
    spool = _spool(tmp_path)

    def encode(chunk):
        kept = [r if isinstance(r, list) else ["converted", str(r)] for r in chunk]
        return json.dumps(kept), kept

    assert spool.append([["plain"], {1, 2}], encode=encode) == (2, 0)
    assert _drain(spool) == [["plain"], ["converted", "{1, 2}"]]


def test_appending_to_a_closed_spool_raises_so_the_caller_keeps_its_records(tmp_path):
    spool = _spool(tmp_path)
    spool.close()
    with pytest.raises(OSError):
        spool.append([["late"]])


def test_prepended_records_come_first_now_and_after_a_crash(tmp_path):
    spool = _spool(tmp_path)
    spool.append([["newer", 1], ["newer", 2]])
    spool.prepend([["older", 0]])
    spool.close()  # as a crash would leave it: the next owner orders segments by name
    successor = _spool(tmp_path)
    assert _drain(successor) == [["older", 0], ["newer", 1], ["newer", 2]]

    live = _spool(tmp_path / "live")
    live.append([["newer"]])
    live.prepend([["older"]])
    assert _drain(live) == [["older"], ["newer"]]
