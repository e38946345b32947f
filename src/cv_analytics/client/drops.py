"""The events clients dropped, kept on disk beside their spool so that ``status`` (another process) sees them.

One small file, ``dropped.json`` in the spool directory, holds the total every
client on the directory has dropped (buffer full, spool at its bound) and the
time of the latest drop. Each client adds what it dropped since its last write,
at most about once a second and when it closes, under an exclusive ``flock`` on
the file, so several processes add up without losing each other's counts. A
client killed with ``kill -9`` loses at most its last second of counts, never
the events it kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
from dataclasses import dataclass

DROPS_FILE = "dropped.json"


@dataclass(frozen=True)
class DropTotals:
    """What every client on a spool directory dropped so far."""

    dropped: int = 0
    #: when the latest drop was recorded, ms since the epoch (None before any)
    last_drop_ms: int | None = None


def record_drops(directory: str | os.PathLike[str], count: int, *, at_ms: int) -> None:
    """Add ``count`` drops, the latest at ``at_ms``; raises :class:`OSError` when the file cannot be written."""
    if count <= 0:
        return
    fd = os.open(pathlib.Path(directory) / DROPS_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = _parse(_read_all(fd))
        last = max(at_ms, before.last_drop_ms or 0)
        text = json.dumps({"dropped": before.dropped + count, "lastDropMs": last}).encode() + b"\n"
        os.pwrite(fd, text, 0)
        os.ftruncate(fd, len(text))
    finally:
        os.close(fd)  # releases the lock


def read_drops(directory: str | os.PathLike[str]) -> DropTotals:
    """The totals of ``directory`` (zero when nothing was ever dropped); read-only, never creates anything."""
    try:
        fd = os.open(pathlib.Path(directory) / DROPS_FILE, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return DropTotals()
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a writer holds it for one read and one write
        return _parse(_read_all(fd))
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 4096, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _parse(data: bytes) -> DropTotals:
    """The totals in the file's text; a damaged file (not written by us) counts as nothing dropped yet."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        fields = json.loads(data or b"{}")
        dropped, last = fields.get("dropped", 0), fields.get("lastDropMs")
        if isinstance(dropped, int) and dropped >= 0 and (last is None or isinstance(last, int)):
            return DropTotals(dropped, last)
    return DropTotals()
