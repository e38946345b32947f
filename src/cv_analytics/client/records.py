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
rounds down) or a :class:`datetime.datetime` (naive means UTC). A number below
10^11 is seconds (``time.time()``): :mod:`cv_analytics.events` converts it, and the
prepared event says so, for the client's stats.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .._ids import random_uuid4
from ..events import (
    EDGE_CONTEXT,
    MAX_EVENT_BYTES,
    MAX_NESTING_DEPTH,
    SECONDS_THRESHOLD,
    QueryEvent,
    ResponseEvent,
    check_nesting,
    check_plausible,
    parse_event,
    to_json,
    to_wire,
)
from ..exceptions import InvalidEventError
from ..queues.base import OutgoingMessage, message_size

QUERY = "q"
RESPONSE = "r"
EVENT = "e"
MESSAGE = "m"

#: Compact JSON, as the spool and the wire use it.
dumps = functools.partial(json.dumps, separators=(",", ":"), ensure_ascii=False)

#: A new correlation id: a random version 4 UUID string, not from ``uuid.uuid4()``,
#: whose ``os.urandom`` releases the GIL and can keep the caller of ``log_query``
#: waiting a whole switch interval (see :func:`cv_analytics._ids.random_uuid4`).
new_correlation_id = random_uuid4


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated event ready to send: the queue message and its body's size in bytes."""

    message: OutgoingMessage
    size: int
    #: the timestamp was given in seconds and converted to milliseconds
    converted_from_seconds: bool = False
    #: optional fields dropped for being out of range (dotted wire names)
    dropped_fields: tuple[str, ...] = ()

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
        # seconds (time.time()) keep their fraction: the event model converts them to ms
        return value if 0 < value < SECONDS_THRESHOLD else int(value)
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
            # one string is one source, not a sequence of letters
            meta["sourcesUsed"] = [sources_used] if isinstance(sources_used, str) else list(sources_used)
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


#: How :func:`~cv_analytics.events.parse_event` measures a dict (compact JSON,
#: non-ASCII escaped), with the encoder built once rather than per call.
_measure = json.JSONEncoder(separators=(",", ":")).encode
_MODELS: dict[str, type[QueryEvent] | type[ResponseEvent]] = {QUERY: QueryEvent, RESPONSE: ResponseEvent}


def _validate_built(kind: str, wire: dict[str, Any]) -> QueryEvent | ResponseEvent:
    """``parse_event(wire)`` for a wire dict built by :func:`to_wire_dict` from a ``q``/``r`` record.

    The same checks, in the same order: the size of the dict as compact JSON,
    then the model's validation (what ``parse_event``'s discriminated union
    runs, picked here from the record's kind, which set ``eventType``). Only
    an event that fails goes through ``parse_event`` itself, for its error.
    """
    try:
        text = _measure(wire)
    except RecursionError:
        raise InvalidEventError(
            f"event is nested deeper than {MAX_NESTING_DEPTH} levels of objects and arrays (the depth limit)"
        ) from None
    except (TypeError, ValueError):
        return parse_event(wire)  # for its error (not JSON-serializable)
    if len(text) <= MAX_EVENT_BYTES:
        check_nesting(text)
        try:
            return check_plausible(_MODELS[kind].model_validate(wire, context=EDGE_CONTEXT))
        except ValidationError:
            pass
    return parse_event(wire)


def prepare(record: Any) -> Prepared:
    """Validate a record and build its queue message.

    Raises :class:`InvalidEventError` (or its subclass
    :class:`~cv_analytics.exceptions.EventTooLargeError`) when the event can never be sent.
    """
    if not isinstance(record, (tuple, list)) or not record:
        raise InvalidEventError(f"a spool record must be a non-empty list, got {type(record).__name__}")
    kind = record[0]
    if kind == MESSAGE:
        _, body, group_id, dedup_id = record
        if not isinstance(body, str):
            raise InvalidEventError("a spooled message body must be a string")
        message = OutgoingMessage(body, group_id, dedup_id)
        return Prepared(message, message_size(message))
    wire = to_wire_dict(record)
    if isinstance(wire, (QueryEvent, ResponseEvent)):
        event = parse_event(to_wire(wire))  # a model built in code meets the edge's rules too
    elif kind == QUERY or kind == RESPONSE:
        event = _validate_built(kind, wire)
    else:
        event = parse_event(wire)
    message = OutgoingMessage(to_json(event), event.group_id, event.dedup_id)
    return Prepared(message, message_size(message), event.converted_from_seconds, event.dropped_fields)
