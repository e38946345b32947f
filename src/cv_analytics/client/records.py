"""What the caller's thread stores, and how the sender turns it into a queue message.

The caller's thread only builds a tuple (a *record*) and appends it to the
buffer; everything that costs time — timestamps to milliseconds, the wire dict,
validation by :func:`cv_analytics.events.parse_event`, JSON — happens here, on
the sender thread.

Record layouts (tuples from the caller, lists after a round trip through the
spool's JSON):

* ``("q", timestamp, correlation_id, session_id, query, metadata)``
* ``("r", timestamp, correlation_id, session_id, response, total_time, llm_time,
  retrieval_time, cache_hit, performance, match_quality, sources_used, metadata)``
* ``("e", event)``: a :class:`QueryEvent` / :class:`ResponseEvent` or a wire dict
* ``("m", body, group_id, dedup_id)``: already validated and serialized (what
  the spool keeps for an event that was prepared before it had to be spooled)

``timestamp`` is milliseconds since the epoch (an int, or a float the sender
rounds down) or a :class:`datetime.datetime` (naive means UTC).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..events import QueryEvent, ResponseEvent, parse_event, to_json
from ..exceptions import InvalidEventError
from ..queues.base import OutgoingMessage

QUERY = "q"
RESPONSE = "r"
EVENT = "e"
MESSAGE = "m"

#: Compact JSON, as the spool and the wire use it.
dumps = functools.partial(json.dumps, separators=(",", ":"), ensure_ascii=False)

_getrandbits = random.getrandbits
_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)


def new_correlation_id() -> str:
    """A random (version 4) UUID string.

    Drawn from the ``random`` module rather than ``uuid.uuid4()``: ``os.urandom``
    releases the GIL for its system call, and a busy sender thread can then keep
    the caller waiting a whole GIL switch interval (5 ms) inside ``log_query``.
    Correlation ids need uniqueness, not secrecy, and ``random`` reseeds itself
    in a forked child, so two processes never draw the same sequence.
    """
    h = "%032x" % ((_getrandbits(128) & _VERSION_MASK) | _VERSION_4)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated event ready to send: the queue message and its body's size in bytes."""

    message: OutgoingMessage
    size: int

    def as_record(self) -> list[Any]:
        """The spool form: validated once, never again."""
        m = self.message
        return [MESSAGE, m.body, m.group_id, m.dedup_id]


def _millis(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidEventError("timestamp must be milliseconds since the epoch or a datetime, not a bool", field="timestamp")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    raise InvalidEventError(
        f"timestamp must be milliseconds since the epoch (int) or a datetime, got {type(value).__name__}",
        field="timestamp",
    )


def _performance(record: Any) -> dict[str, Any] | None:
    total, llm, retrieval, cache_hit, performance = record[5:10]
    if performance is None:
        merged: dict[str, Any] = {}
    elif isinstance(performance, Mapping):
        merged = dict(performance)
    elif hasattr(performance, "model_dump"):
        merged = performance.model_dump(by_alias=True, exclude_none=True)
    else:
        raise InvalidEventError("performance must be a mapping or a Performance model", field="performance")
    for key, value in (("totalTime", total), ("llmTime", llm), ("retrievalTime", retrieval), ("cacheHit", cache_hit)):
        if value is not None:
            merged[key] = value
    return merged or None


def to_wire_dict(record: Any) -> dict[str, Any] | QueryEvent | ResponseEvent:
    """The wire dict a ``q``/``r``/``e`` record stands for (a model passes through)."""
    kind = record[0]
    if kind == QUERY:
        _, timestamp, correlation_id, session_id, query, metadata = record
        wire: dict[str, Any] = {
            "eventType": "query",
            "correlationId": correlation_id,
            "timestamp": _millis(timestamp),
            "query": query,
        }
        if session_id is not None:
            wire["sessionId"] = session_id
        if metadata is not None:
            wire["metadata"] = metadata
        return wire
    if kind == RESPONSE:
        timestamp, correlation_id, session_id, response = record[1:5]
        match_quality, sources_used, metadata = record[10:13]
        wire = {"eventType": "response", "correlationId": correlation_id, "timestamp": _millis(timestamp)}
        if session_id is not None:
            wire["sessionId"] = session_id
        if response is not None:
            wire["response"] = response
        performance = _performance(record)
        if performance is not None:
            wire["performance"] = performance
        meta = dict(metadata) if metadata is not None else {}
        if match_quality is not None:
            meta["matchQuality"] = match_quality
        if sources_used is not None:
            meta["sourcesUsed"] = list(sources_used)
        if meta:
            wire["metadata"] = meta
        return wire
    if kind == EVENT:
        event = record[1]
        if isinstance(event, (QueryEvent, ResponseEvent)):
            return event
        if isinstance(event, Mapping):
            return dict(event)
        raise InvalidEventError(
            f"log() takes a QueryEvent, a ResponseEvent or a wire dict, not {type(event).__name__}"
        )
    raise InvalidEventError(f"unknown record kind {kind!r} (a spool written by a newer cv-analytics?)")


def prepare(record: Any) -> Prepared:
    """Validate a record and build its queue message.

    Raises :class:`InvalidEventError` (or its subclass
    :class:`~cv_analytics.exceptions.EventTooLargeError`) when the event can never be sent.
    """
    if not isinstance(record, (tuple, list)) or not record:
        raise InvalidEventError(f"a spool record must be a non-empty list, got {type(record).__name__}")
    if record[0] == MESSAGE:
        _, body, group_id, dedup_id = record
        if not isinstance(body, str):
            raise InvalidEventError("a spooled message body must be a string")
        return Prepared(OutgoingMessage(body, group_id, dedup_id), len(body.encode()))
    wire = to_wire_dict(record)
    event = wire if isinstance(wire, (QueryEvent, ResponseEvent)) else parse_event(wire)
    body = to_json(event)
    return Prepared(OutgoingMessage(body, event.group_id, event.dedup_id), len(body.encode()))
