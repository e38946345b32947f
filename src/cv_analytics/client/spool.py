"""The disk spool: append-only segment files of JSON lines, replayed in order.

Layout of a spool directory (one directory per queue; several processes may
share it)::

    00001763164800123456789-0004242-9f3ac01b-000001.spool.jsonl
    00001763164800123456789-0004242-9f3ac01b-000001.spool.jsonl.pos
    .tmp-...                       a segment being created

Each line of a segment is a JSON array of records (see :mod:`.records`); one
line holds up to :data:`RECORDS_PER_LINE` records so a burst is encoded by
``json`` in C rather than one Python call per event. The ``.pos`` file says how
far a segment has been replayed (``"<byte offset> <records of that line>"``),
written at most every ``persist_interval`` seconds and on close: after a crash
at most that much is sent twice, which the queue's deduplication id and the
processor's idempotence absorb.

Ownership is an exclusive ``flock`` on the segment file, held from creation
until the segment is replayed and deleted, or until the process ends. A process
that dies (even ``kill -9``) loses its locks, so the next client to scan the
directory claims its segments and replays them. Segments are created under a
``.tmp-`` name, locked, then renamed, so a scanner never claims a segment its
creator has not locked yet.

Limits: the spool survives a process crash, not a power cut (no fsync; an
analytics event is not worth a disk flush per burst). ``max_bytes`` bounds the
whole directory, counting other processes' segments as last seen by a scan.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import pathlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock

logger = logging.getLogger("cv_analytics.client")

SEGMENT_SUFFIX = ".spool.jsonl"
POSITION_SUFFIX = ".pos"
TMP_PREFIX = ".tmp-"
#: Records per JSON line: big enough that encoding is C-speed, small enough that one bad line loses little.
RECORDS_PER_LINE = 256
_READ_CHUNK = 256 * 1024

#: ``encode(records) -> (json_text, records_kept)``
Encoder = Callable[[Sequence[Any]], tuple[str, Sequence[Any]]]


def _dumps(records: Sequence[Any]) -> str:
    return json.dumps(records, separators=(",", ":"), ensure_ascii=False)


@dataclass(eq=False)
class _Segment:
    path: pathlib.Path
    fd: int
    own: bool
    #: bytes of the file this spool knows about (own: written so far; foreign: size when claimed)
    size: int
    #: the durable position: first line not wholly committed, and records of it committed
    commit_off: int = 0
    commit_idx: int = 0
    persisted: tuple[int, int] = (0, 0)
    #: the read position: next line to read, and the decoded line being handed out
    read_off: int = 0
    line_off: int = 0
    line_end: int = 0
    line: list[Any] = field(default_factory=list)
    line_next: int = 0
    rbuf: bytearray = field(default_factory=bytearray)
    rbuf_off: int = 0
    #: lines with nothing to hand out (unreadable): start offset -> end offset
    skips: dict[int, int] = field(default_factory=dict)

    def advance_commit(self, offset: int, index: int) -> None:
        while index == 0 and offset in self.skips:
            offset = self.skips.pop(offset)
        self.commit_off, self.commit_idx = offset, index

    def unread(self) -> bool:
        return self.line_next < len(self.line) or self.read_off < self.size

    def backlog(self) -> bool:
        return self.commit_off < self.size


@dataclass(frozen=True, slots=True)
class _Taken:
    segment: _Segment
    line_off: int
    line_end: int
    index: int
    count: int


class Spool:
    """A FIFO of records on disk, shared safely by several processes.

    Thread-safe (a lock around every operation). Records are read with
    :meth:`take` and acknowledged, in the order taken, with :meth:`commit`;
    what is taken but not committed is read again by whoever replays the
    segment after a crash.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int,
        segment_bytes: int,
        clock: Clock,
        persist_interval: float = 1.0,
    ) -> None:
        self.directory = pathlib.Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._clock = clock
        self._persist_interval = persist_interval
        self._lock = threading.RLock()
        self._token = secrets.token_hex(4)
        self._seq = 0
        self._foreign: deque[_Segment] = deque()
        self._own: deque[_Segment] = deque()
        self._writer: _Segment | None = None
        self._taken: deque[_Taken] = deque()
        self._total = 0
        self._last_persist = clock.now()
        self._closed = False
        #: lines that could not be decoded (their records are lost; logged)
        self.corrupt_lines = 0

    # -- lifecycle -----------------------------------------------------------

    def open(self) -> None:
        """Create the directory and claim segments left by processes that are gone."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.claim_leftovers()

    def claim_leftovers(self) -> int:
        """Lock and queue for replay every segment no live process holds; returns how many.

        Also refreshes the directory's total size, which other processes change.
        """
        with self._lock:
            held = {seg.path.name for seg in (*self._foreign, *self._own)}
            claimed = 0
            total = 0
            try:
                names = sorted(os.listdir(self.directory))
            except FileNotFoundError:
                return 0
            present = set(names)
            for name in names:
                path = self.directory / name
                if name.endswith(SEGMENT_SUFFIX):
                    if name not in held and self._claim(path):
                        claimed += 1
                    with contextlib.suppress(FileNotFoundError):  # (a claimed empty segment is gone)
                        total += path.stat().st_size
                elif name.startswith(TMP_PREFIX):
                    self._remove_if_unlocked(path)
                elif (
                    name.endswith((POSITION_SUFFIX, POSITION_SUFFIX + ".tmp"))
                    and name.split(POSITION_SUFFIX)[0] not in present
                ):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            self._total = total
            if claimed:
                logger.info(
                    "claimed %d spool segment(s) left in %s by a process that ended; replaying them",
                    claimed,
                    self.directory,
                )
            return claimed

    def close(self) -> None:
        """Record replay positions and release every segment (other processes may then claim them)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for seg in (*self._foreign, *self._own):
                with contextlib.suppress(OSError):
                    self._persist(seg)
                with contextlib.suppress(OSError):
                    os.close(seg.fd)
            self._foreign.clear()
            self._own.clear()
            self._taken.clear()
            self._writer = None

    def abandon_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptors without touching its locks or files.

        ``flock`` locks belong to the open file, which the parent still holds, so
        closing the child's copies releases nothing; unlocking would.
        """
        for seg in (*self._foreign, *self._own):
            with contextlib.suppress(OSError):
                os.close(seg.fd)
        self._foreign.clear()
        self._own.clear()
        self._taken.clear()
        self._writer = None
        self._closed = True

    # -- state ---------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Bytes in the spool directory's segments (other processes' as of the last scan)."""
        return self._total

    def has_unread(self) -> bool:
        """Records not yet handed out by :meth:`take`."""
        with self._lock:
            return any(seg.unread() for seg in (*self._foreign, *self._own))

    def has_backlog(self, *, foreign_only: bool = False) -> bool:
        """Records not yet committed (taken or not)."""
        with self._lock:
            segments = self._foreign if foreign_only else (*self._foreign, *self._own)
            return any(seg.backlog() for seg in segments)

    # -- writing -------------------------------------------------------------

    def append(self, records: Sequence[Any], encode: Encoder | None = None) -> tuple[int, int]:
        """Append records at the tail; returns ``(written, dropped)``.

        Records that would take the directory past ``max_bytes`` are dropped,
        with every record after them, so what is kept stays the oldest.
        ``encode(chunk) -> (text, kept)`` may replace plain JSON for a chunk of
        records: ``kept`` is the chunk as encoded (records it dropped or
        rewrote are its business). Raises :class:`OSError` when nothing could
        be written (a full or read-only disk): the caller still has the records.
        """
        with self._lock:
            lines, dropped = self._encode(records, encode)
            written, _ = self.append_lines(lines)
            return written, dropped

    def prepend(self, records: Sequence[Any], encode: Encoder | None = None) -> tuple[int, int]:
        """Put records *before* everything unread in this process's segments.

        For events that were taken from memory to be sent while newer ones were
        spooled, and then could not be sent: they must still be replayed first.
        The new segment's name sorts before this spool's other segments, so a
        replay after a crash keeps the order too.
        """
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, f"spool {self.directory} is closed")
            lines, dropped = self._encode(records, encode)
            if not lines:
                return 0, dropped
            first = min((seg.path.name for seg in self._own), default=None)
            stamp = int(first.split("-", 1)[0]) - 1 if first else time.time_ns()
            seg = self._new_segment(stamp)
            self._own.remove(seg)
            self._own.appendleft(seg)
            writer, self._writer = self._writer, seg
            try:
                self._write([data for data, _ in lines])
            finally:
                self._writer = writer
            return sum(count for _, count in lines), dropped

    def _encode(self, records: Sequence[Any], encode: Encoder | None) -> tuple[list[tuple[bytes, int]], int]:
        """JSON lines of at most RECORDS_PER_LINE records that fit the size bound, and how many did not."""
        budget = self.max_bytes - self._total
        lines: list[tuple[bytes, int]] = []
        # (records, already encoded once and known to be plain JSON)
        todo: list[tuple[Sequence[Any], bool]] = [
            (records[i : i + RECORDS_PER_LINE], False) for i in range(0, len(records), RECORDS_PER_LINE)
        ]
        todo.reverse()
        while todo:
            chunk, plain = todo.pop()
            if plain or encode is None:
                text, kept = _dumps(chunk), chunk
            else:
                text, kept = encode(chunk)
            if not kept:
                continue
            data = (text + "\n").encode()
            if len(data) <= budget:
                lines.append((data, len(kept)))
                budget -= len(data)
            elif len(kept) > 1:  # split the line to fill the spool to its bound exactly
                mid = len(kept) // 2
                todo.append((kept[mid:], True))
                todo.append((kept[:mid], True))
            else:
                return lines, 1 + sum(len(c) for c, _ in todo)
        return lines, 0

    def append_lines(self, lines: Sequence[tuple[bytes, int]]) -> tuple[int, int]:
        """Append encoded lines (each ending in a newline, with its record count); ``(written, dropped)``."""
        dropped = 0
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, f"spool {self.directory} is closed")
            written = 0
            kept: list[tuple[bytes, int]] = []
            budget = self.max_bytes - self._total
            for index, (data, count) in enumerate(lines):
                if len(data) > budget:
                    dropped += sum(c for _, c in lines[index:])
                    break
                budget -= len(data)
                kept.append((data, count))
            pending: list[bytes] = []
            pending_count = pending_bytes = 0
            for data, count in kept:
                seg = self._writer
                if seg is not None and seg.size + pending_bytes + len(data) > self.segment_bytes and (
                    seg.size or pending
                ):
                    if pending:
                        self._write(pending)
                    written += pending_count
                    pending, pending_count, pending_bytes = [], 0, 0
                    self._writer = None
                if self._writer is None:
                    self._writer = self._new_segment()
                pending.append(data)
                pending_count += count
                pending_bytes += len(data)
            if pending:
                self._write(pending)
                written += pending_count
            return written, dropped

    def _write(self, parts: list[bytes]) -> None:
        seg = self._writer
        assert seg is not None
        data = b"".join(parts)
        start = seg.size
        view = memoryview(data)
        try:
            while view:
                n = os.write(seg.fd, view)
                view = view[n:]
        except OSError:
            # leave no torn line behind: the reader would drop the records after it
            with contextlib.suppress(OSError):
                os.ftruncate(seg.fd, start)
            raise
        seg.size += len(data)
        self._total += len(data)

    def _new_segment(self, stamp: int | None = None) -> _Segment:
        self._seq += 1
        name = f"{time.time_ns() if stamp is None else stamp:023d}-{os.getpid():07d}-{self._token}-{self._seq:06d}{SEGMENT_SUFFIX}"
        final = self.directory / name
        tmp = self.directory / f"{TMP_PREFIX}{name}"
        for attempt in range(2):
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(tmp, final)
            except OSError:
                os.close(fd)
                # a scanner removed our fresh .tmp file in the instant before we locked it: try again
                if attempt:
                    raise
                continue
            seg = _Segment(final, fd, own=True, size=0)
            self._own.append(seg)
            return seg
        raise AssertionError("unreachable")

    # -- reading -------------------------------------------------------------

    def take(self, n: int) -> list[tuple[Any, bool]]:
        """Hand out up to ``n`` records in order, each with whether this process wrote it."""
        out: list[tuple[Any, bool]] = []
        with self._lock:
            for seg in (*self._foreign, *self._own):
                while len(out) < n and seg.unread():
                    if seg.line_next >= len(seg.line) and not self._next_line(seg):
                        break
                    while seg.line_next < len(seg.line) and len(out) < n:
                        i = seg.line_next
                        out.append((seg.line[i], seg.own))
                        self._taken.append(_Taken(seg, seg.line_off, seg.line_end, i, len(seg.line)))
                        seg.line_next = i + 1
                if len(out) >= n:
                    break
        return out

    def _next_line(self, seg: _Segment) -> bool:
        """Decode the next line of ``seg`` into ``seg.line``; False when none is complete."""
        while seg.read_off < seg.size:
            start = seg.read_off - seg.rbuf_off
            nl = seg.rbuf.find(b"\n", start)
            if nl < 0:
                have = seg.rbuf_off + len(seg.rbuf)
                if have >= seg.size:
                    self._torn_tail(seg)
                    return False
                if start > 0:  # drop what has been read already before growing the buffer
                    del seg.rbuf[:start]
                    seg.rbuf_off += start
                seg.rbuf += os.pread(seg.fd, _READ_CHUNK, have)
                if seg.rbuf_off + len(seg.rbuf) == have:  # the file shrank under us
                    self._torn_tail(seg)
                    return False
                continue
            raw = bytes(seg.rbuf[start:nl])
            line_off, line_end = seg.read_off, seg.rbuf_off + nl + 1
            seg.read_off = line_end
            if nl + 1 >= len(seg.rbuf):
                seg.rbuf.clear()
                seg.rbuf_off = line_end
            try:
                records = json.loads(raw)
                if not isinstance(records, list):
                    raise ValueError("a spool line must be a JSON array")
            except ValueError as exc:
                self.corrupt_lines += 1
                logger.error("skipping an unreadable line of spool segment %s at byte %d: %s", seg.path.name, line_off, exc)
                records = []
            skip = seg.commit_idx if line_off == seg.commit_off else 0
            if skip >= len(records):
                # nothing of this line left to hand out: it is committed once what precedes it is
                seg.skips[line_off] = line_end
                if line_off == seg.commit_off:
                    seg.advance_commit(line_off, 0)
                continue
            seg.line, seg.line_next, seg.line_off, seg.line_end = records, skip, line_off, line_end
            return True
        return False

    def _torn_tail(self, seg: _Segment) -> None:
        # Only a writer that died mid-write (or a disk that filled) leaves a line without
        # its newline; what follows the last newline is not a whole record.
        lost = seg.size - seg.read_off
        logger.warning("spool segment %s ends in %d bytes of an incomplete line; skipping them", seg.path.name, lost)
        self.corrupt_lines += 1
        seg.size = seg.read_off  # the segment ends at its last whole line
        self._total = max(0, self._total - lost)

    def commit(self, n: int) -> None:
        """Acknowledge the first ``n`` records taken and not yet committed."""
        if n <= 0:
            return
        with self._lock:
            touched: list[_Segment] = []
            for _ in range(min(n, len(self._taken))):
                t = self._taken.popleft()
                seg = t.segment
                if t.index + 1 >= t.count:
                    seg.advance_commit(t.line_end, 0)
                else:
                    seg.advance_commit(t.line_off, t.index + 1)
                if not touched or touched[-1] is not seg:
                    touched.append(seg)
            for seg in touched:
                if not seg.backlog() and not seg.unread():
                    self._retire(seg)
            now = self._clock.now()
            if now - self._last_persist >= self._persist_interval:
                self._last_persist = now
                for seg in (*self._foreign, *self._own):
                    with contextlib.suppress(OSError):
                        self._persist(seg)

    # -- segment files -------------------------------------------------------

    def _retire(self, seg: _Segment) -> None:
        # unlink while still holding the lock, so no scanner can claim a half-deleted segment
        for path in (seg.path, seg.path.with_name(seg.path.name + POSITION_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        with contextlib.suppress(OSError):
            os.close(seg.fd)
        self._total = max(0, self._total - seg.size)
        if seg.own:
            self._own.remove(seg)
        else:
            self._foreign.remove(seg)
        if self._writer is seg:
            self._writer = None

    def _persist(self, seg: _Segment) -> None:
        position = (seg.commit_off, seg.commit_idx)
        if position == seg.persisted:
            return
        target = seg.path.with_name(seg.path.name + POSITION_SUFFIX)
        tmp = seg.path.with_name(seg.path.name + POSITION_SUFFIX + ".tmp")
        tmp.write_text(f"{position[0]} {position[1]}\n")
        os.replace(tmp, target)
        seg.persisted = position

    def _claim(self, path: pathlib.Path) -> bool:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            mine = os.fstat(fd)
            if os.stat(path).st_ino != mine.st_ino:  # replaced after we opened it
                raise FileNotFoundError(path)
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return False
        seg = _Segment(path, fd, own=False, size=mine.st_size)
        off, idx = self._load_position(path)
        if off > seg.size:
            off, idx = 0, 0
        seg.commit_off = seg.read_off = seg.rbuf_off = off
        seg.commit_idx = idx
        seg.persisted = (off, idx)
        if not seg.backlog():
            self._foreign.append(seg)
            self._retire(seg)
            return False
        self._foreign.append(seg)
        return True

    @staticmethod
    def _load_position(path: pathlib.Path) -> tuple[int, int]:
        try:
            text = path.with_name(path.name + POSITION_SUFFIX).read_text()
            off, idx = (int(part) for part in text.split())
            return max(0, off), max(0, idx)
        except (FileNotFoundError, ValueError):
            return 0, 0

    @staticmethod
    def _remove_if_unlocked(path: pathlib.Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its creator is alive and about to rename it
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        finally:
            os.close(fd)
