"""What ``send`` reads from files: message bodies with where each came from, and what it refuses.

A ``.json`` file is one body; a ``.jsonl`` file one body per line. The queue
takes bodies as given, valid events or not (so that the processor's handling of
bad events can be exercised); refused here is only what the queue cannot take
(an empty body, over the size limit) or what cannot be read as text (not
UTF-8, a directory, a missing file), each with its file and line number.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import uuid
from dataclasses import dataclass

from ...events import MAX_EVENT_BYTES, deduplication_id, message_group_id



@dataclass(frozen=True)
class Body:
    where: str  # "file" or "file:line"
    text: str


@dataclass(frozen=True)
class Refusal:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def _check(where: str, raw: bytes) -> Body | Refusal:
    if not raw.strip():
        return Refusal(where, "empty body; a queue (SQS) refuses empty messages: not sent")
    if len(raw) > MAX_EVENT_BYTES:
        return Refusal(where, f"body is {len(raw)} bytes, over the {MAX_EVENT_BYTES}-byte queue limit; not sent")
    try:
        return Body(where, raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Refusal(where, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): not sent")


def read_bodies(paths: list[pathlib.Path]) -> tuple[list[Body], list[Refusal]]:
    """Every readable body of ``paths`` in order, and every refusal with its place."""
    bodies: list[Body] = []
    refused: list[Refusal] = []
    for path in paths:
        if path.is_dir():
            refused.append(Refusal(str(path), "is a directory: pass its files instead (e.g. DIR/*.jsonl)"))
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            refused.append(Refusal(str(path), "no such file"))
            continue
        except OSError as exc:
            refused.append(Refusal(str(path), f"cannot be read ({exc.strerror or exc})"))
            continue
        if path.suffix == ".jsonl":
            for number, line in enumerate(data.splitlines(), 1):
                checked = _check(f"{path}:{number}", line)
                (bodies if isinstance(checked, Body) else refused).append(checked)  # type: ignore[arg-type]
        else:
            checked = _check(str(path), data)
            (bodies if isinstance(checked, Body) else refused).append(checked)  # type: ignore[arg-type]
    return bodies, refused


def _event_keys(body: str) -> tuple[str, str, str | None] | None:
    """(correlation id, event type, session id) of a body that looks like an event, else None."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's stack: the processor decides
        return None
    if not isinstance(data, dict):
        return None
    cid = data.get("correlationId") or data.get("requestId")
    kind = data.get("eventType")
    if not (isinstance(cid, str) and cid and isinstance(kind, str) and kind):
        return None
    session = data.get("sessionId")
    return cid, kind, session if isinstance(session, str) and session else None


def routing(body: str, *, replay: bool) -> tuple[str, str]:
    """Group and deduplication ids for a raw body, as a producer would set them.

    Event-like bodies get :func:`cv_analytics.events.deduplication_id` and their
    session (else correlation id) as group; anything else is routed by content
    hash so that it still reaches the processor, which dead-letters it with a reason.
    """
    digest = hashlib.sha256(body.encode()).hexdigest()
    keys = _event_keys(body)
    if keys is None:
        group, dedup = f"raw-{digest[:16]}", digest
    else:
        cid, kind, session = keys
        group, dedup = message_group_id(session or cid), deduplication_id(cid, kind)
    if replay:  # a fresh id, as replaying an archive or a retry after the window would have
        dedup = f"{dedup[:80]}:replay:{uuid.uuid4().hex}"  # at most 80 + 40 characters
    return group, dedup
