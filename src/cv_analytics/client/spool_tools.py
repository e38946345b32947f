"""What a client left in its spool, seen and sent without starting a client.

A client spools what it cannot send in time (an outage, a burst, the exit
hook's ``shutdown_timeout``); normally the next client on the same directory
replays it. :func:`spool_status` shows that backlog (read-only: it never creates
the directory nor takes a segment), and :func:`replay_spool` sends it now.

Replaying is safe beside a running client on the same directory: it takes only
segments no live process holds, under the same ``flock`` a client takes
(:class:`~.spool.Spool`), so no segment is replayed by two at once; a segment a
crash left half-committed may be sent again from its last recorded position,
which the events' stable deduplication ids and the processor's idempotence absorb.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pathlib
from dataclasses import dataclass
from typing import Any

from ..clock import Clock, SystemClock
from ..events import SECONDS_THRESHOLD
from ..exceptions import CVAnalyticsError
from ..queues.base import Queue
from . import records
from .drops import read_drops
from .spool import POSITION_SUFFIX, SEGMENT_SUFFIX, Spool

#: Events taken from the spool per ``send_many`` at most, and their bytes at most.
_REPLAY_EVENTS = 500
_REPLAY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class SpoolStatus:
    """The backlog of a spool directory, and what clients on it dropped."""

    directory: str
    #: whether the directory exists at all
    exists: bool
    #: events not yet replayed, in every segment
    events: int
    #: bytes of the segment files
    bytes: int
    segments: int
    #: segments a running client holds (it replays them itself; replay_spool skips them)
    held_segments: int
    #: the oldest unreplayed event's timestamp (ms since the epoch), when one can be read
    oldest_timestamp_ms: int | None
    #: lines that cannot be decoded (their events are lost)
    corrupt_lines: int
    #: events clients on this directory dropped, ever (buffer full, spool at its bound; see :mod:`.drops`)
    dropped: int = 0
    #: when the latest drop was recorded (ms since the epoch), None before any
    last_drop_ms: int | None = None

    @property
    def oldest(self) -> str | None:
        """The oldest event's time as ISO 8601 UTC."""
        return _iso(self.oldest_timestamp_ms)

    @property
    def last_drop(self) -> str | None:
        """The latest drop's time as ISO 8601 UTC."""
        return _iso(self.last_drop_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "exists": self.exists,
            "events": self.events,
            "bytes": self.bytes,
            "segments": self.segments,
            "heldSegments": self.held_segments,
            "oldestTimestamp": self.oldest_timestamp_ms,
            "oldest": self.oldest,
            "corruptLines": self.corrupt_lines,
            "dropped": self.dropped,
            "lastDropTimestamp": self.last_drop_ms,
            "lastDrop": self.last_drop,
        }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ReplayResult:
    """What :func:`replay_spool` did."""

    #: accepted by the queue (duplicates of what was sent before included)
    sent: int
    #: refused by the queue for good (too large): not retried
    failed: int
    #: not valid events: never sendable, removed from the spool
    invalid: int
    #: events still in the spool afterwards (held by a running client, or the queue went away)
    left: int
    #: why the replay stopped early (the queue unavailable), else None
    error: str | None = None


def _record_timestamp(record: Any) -> int | None:
    try:
        kind = record[0]
        if kind in (records.QUERY, records.RESPONSE):
            value = record[1]
        elif kind == records.MESSAGE:
            value = json.loads(record[1]).get("timestamp")
        elif kind == records.EVENT and isinstance(record[1], dict):
            value = record[1].get("timestamp")
        else:
            return None
    except (IndexError, TypeError, ValueError, AttributeError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # seconds, as the events module reads them (its threshold)
    return int(value * 1000) if 0 < value < SECONDS_THRESHOLD else int(value)


def _position(segment: pathlib.Path) -> tuple[int, int]:
    try:
        off, idx = (int(p) for p in segment.with_name(segment.name + POSITION_SUFFIX).read_text().split())
        return max(0, off), max(0, idx)
    except (FileNotFoundError, ValueError):
        return 0, 0


def _held(path: pathlib.Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the shared lock at once
    return False


def spool_status(spool_dir: str | os.PathLike[str]) -> SpoolStatus:
    """Count what waits in ``spool_dir``: events, bytes, segments, the oldest event's time, and what clients dropped.

    Read-only: never creates the directory, never claims or changes a segment.
    A running client's segments are counted as of their last recorded position.
    """
    directory = pathlib.Path(spool_dir)
    if not directory.is_dir():
        return SpoolStatus(os.fspath(directory), False, 0, 0, 0, 0, None, 0)
    events = size = count = held = corrupt = 0
    oldest: int | None = None
    for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # replayed and removed meanwhile
            continue
        count += 1
        size += len(data)
        held += _held(path)
        offset, index = _position(path)
        if offset > len(data):
            offset, index = 0, 0
        for n, line in enumerate(data[offset:].split(b"\n")):
            if not line:
                continue
            try:
                batch = json.loads(line)
                if not isinstance(batch, list):
                    raise ValueError("not a list")
            except (ValueError, RecursionError):
                corrupt += 1
                continue
            unread = batch[index:] if n == 0 else batch
            events += len(unread)
            stamp = _record_timestamp(unread[0]) if unread else None  # lines are written oldest first
            if stamp is not None and (oldest is None or stamp < oldest):
                oldest = stamp
    drops = read_drops(directory)
    return SpoolStatus(os.fspath(directory), True, events, size, count, held, oldest, corrupt, drops.dropped, drops.last_drop_ms)


def replay_spool(spool_dir: str | os.PathLike[str], queue: Queue, *, clock: Clock | None = None) -> ReplayResult:
    """Send everything spooled in ``spool_dir`` that no running client holds, in order.

    Each event is validated as the client would (an invalid one is counted and
    removed); what the queue refuses for good is counted as failed; when the
    queue becomes unavailable the replay stops and what is left stays spooled,
    from where it stopped. Never creates the directory.
    """
    directory = pathlib.Path(spool_dir)
    if not directory.is_dir():
        return ReplayResult(0, 0, 0, 0)
    spool = Spool(directory, max_bytes=2**62, segment_bytes=2**62, clock=clock or SystemClock())
    sent = failed = invalid = 0
    error: str | None = None
    try:
        spool.claim_leftovers()
        while error is None:
            # up to _REPLAY_EVENTS events or _REPLAY_BYTES per send, ten at a time
            taken: list[tuple[Any, bool]] = []
            prepared: list[records.Prepared | None] = []
            size = 0
            while len(taken) < _REPLAY_EVENTS and size < _REPLAY_BYTES:
                step = spool.take(10)
                if not step:
                    break
                taken.extend(step)
                for record, _own in step:
                    try:
                        item: records.Prepared | None = records.prepare(record)
                    except Exception:  # noqa: BLE001 - one bad record costs at most itself
                        item = None
                    prepared.append(item)
                    size += item.size if item is not None else 0
            if not taken:
                break
            messages = [p.message for p in prepared if p is not None]
            try:
                outcomes = iter(queue.send_many(messages) if messages else [])
            except CVAnalyticsError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            settled = 0
            for item in prepared:
                if item is None:
                    invalid += 1
                    settled += 1
                    continue
                outcome = next(outcomes)
                if outcome.ok:
                    sent += 1
                elif outcome.sender_fault:
                    failed += 1
                else:  # transient: stop here, in order; the rest stays spooled from this event on
                    error = f"the queue refused an event for now: {outcome.error}"
                    break
                settled += 1
            spool.commit(settled)
    finally:
        spool.close()
    left = spool_status(directory).events
    return ReplayResult(sent, failed, invalid, left, error)
