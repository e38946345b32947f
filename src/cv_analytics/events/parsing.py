"""A body into an event, bounded whatever it contains: size, depth, ranges, lenient optional fields."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from ..exceptions import EventTooLargeError, InvalidEventError
from .model import (
    _EVENT_ADAPTER,
    EDGE_CONTEXT,
    MAX_EVENT_BYTES,
    MAX_NESTING_DEPTH,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    QueryEvent,
    ResponseEvent,
    _warn_once,
)


# -- bounded parsing --------------------------------------------------------------

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
#: One level of innermost pairs: a left-to-right pass that never rescans what it produced.
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")


def check_nesting(raw: bytes | str) -> None:
    """Refuse a body nested deeper than :data:`MAX_NESTING_DEPTH`, without recursion.

    Almost every body has fewer brackets than the limit, which two C-speed counts
    show; only others are scanned: strings removed, brackets kept, and innermost
    pairs removed one level per pass (at most the limit's number of passes, each
    linear in the body).
    """
    if isinstance(raw, str):
        if raw.count("{") + raw.count("[") <= MAX_NESTING_DEPTH:
            return
        raw = raw.encode()
    elif raw.count(b"{") + raw.count(b"[") <= MAX_NESTING_DEPTH:
        return
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(MAX_NESTING_DEPTH):
        if not brackets:
            return
        reduced = _INNERMOST_PAIR.sub(b"", brackets)
        if reduced == brackets:
            raise InvalidEventError("event body is not valid JSON: its brackets do not balance")
        brackets = reduced
    if brackets:
        raise InvalidEventError(
            f"event body is nested deeper than {MAX_NESTING_DEPTH} levels of objects and arrays "
            "(the depth limit); flatten the metadata",
            field=None,
        )


def _too_large(size: int) -> EventTooLargeError:
    return EventTooLargeError(
        f"event body is {size} bytes, over the {MAX_EVENT_BYTES}-byte limit; shorten the query or response text",
        field=None,
    )


#: Optional fields an event keeps its other data without (wire paths): a value out of
#: range or of the wrong type is dropped, not the event. The texts and ids are not here.
_OPTIONAL_FIELDS = frozenset(
    {
        ("performance",),
        ("performance", "totalTime"),
        ("performance", "llmTime"),
        ("performance", "retrievalTime"),
        ("performance", "cacheHit"),
        ("metadata",),
        ("metadata", "matchQuality"),
        ("metadata", "sourcesUsed"),
        ("metadata", "userAgent"),
        ("metadata", "referer"),
        ("matchType",),
        ("matchScore",),
        ("reasoning",),
    }
)

def _error_path(error: Any, event_type: str) -> tuple[str, ...]:
    loc = [str(part) for part in error["loc"]]
    if loc and loc[0] == event_type:  # the discriminator's tag leads the location
        loc = loc[1:]
    return tuple(loc)


def _optional_culprits(exc: ValidationError, event_type: str) -> list[tuple[str, ...]] | None:
    """The optional fields to drop for ``exc``'s errors, or None when a required one is wrong."""
    culprits: list[tuple[str, ...]] = []
    for error in exc.errors():
        path = _error_path(error, event_type)
        match = next((path[:n] for n in (2, 1) if path[:n] in _OPTIONAL_FIELDS), None)
        if match is None:
            return None
        if match not in culprits:
            culprits.append(match)
    return culprits


def _without(data: dict[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    cleaned = dict(data)
    for path in paths:
        if len(path) == 1:
            cleaned.pop(path[0], None)
        elif isinstance(cleaned.get(path[0]), dict):
            cleaned[path[0]] = {k: v for k, v in cleaned[path[0]].items() if k != path[1]}
    return cleaned


def _strict_error(exc: ValidationError, event_type: str) -> InvalidEventError:
    first = exc.errors()[0]
    field = ".".join(_error_path(first, event_type)) or None
    if (field == "correlationId" or field == "correlation_id") and first["type"] == "string_too_long":
        field = "correlationId"
        limit = first.get("ctx", {}).get("max_length")
        message = f"field 'correlationId' is {len(first['input'])} characters, over the {limit}-character limit"
    elif field == "correlationId" or field == "correlation_id":
        field = "correlationId"
        message = "field 'correlationId' (or 'requestId' in the older shape) is required and must be a non-empty string"
    elif field == "timestamp":
        message = (
            f"field 'timestamp' must be milliseconds since the epoch between 2000-01-01 and 2100-01-01 "
            f"({MIN_TIMESTAMP_MS}..{MAX_TIMESTAMP_MS}), got {first.get('input')!r}"
        )
    else:
        message = f"field {field!r}: {first['msg']}"
    return InvalidEventError(
        f"invalid {event_type} event: {message} ({exc.error_count()} error(s) in all)", field=field
    )


def check_plausible(event: QueryEvent | ResponseEvent) -> QueryEvent | ResponseEvent:
    """``event`` when its timestamp is in the plausible range, else :class:`InvalidEventError`.

    The edge's rule (parse_event and the client apply it); a Python comparison after
    validation rather than a validator, which would cost every event a call.
    """
    if MIN_TIMESTAMP_MS <= event.timestamp < MAX_TIMESTAMP_MS:
        return event
    raise InvalidEventError(
        f"invalid {event.event_type.value} event: field 'timestamp' must be milliseconds since the epoch "
        f"between 2000-01-01 and 2100-01-01 ({MIN_TIMESTAMP_MS}..{MAX_TIMESTAMP_MS}), got {event.timestamp} "
        "(microseconds?)",
        field="timestamp",
    )


def _one_source(data: dict[str, Any]) -> dict[str, Any]:
    # "Python" is one source, not ['P', 'y', 't', 'h', 'o', 'n'] (only on the slow path: it fails validation)
    meta = data.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("sourcesUsed"), str):
        return {**data, "metadata": {**meta, "sourcesUsed": [meta["sourcesUsed"]]}}
    return data


def parse_event(body: str | bytes | dict[str, Any]) -> QueryEvent | ResponseEvent:
    """Validate one message body (JSON text or an already-decoded object).

    Bounded whatever the body holds: raises :class:`EventTooLargeError` for a
    body over 256 KiB, and :class:`InvalidEventError` (naming the first
    offending field where there is one) for a body nested deeper than
    :data:`MAX_NESTING_DEPTH` (32) levels, for a timestamp outside 2000–2100 in
    milliseconds, and for any other invalid event. A timestamp in seconds is
    converted; an optional field out of its range is dropped from the event and
    named in its ``dropped_fields`` (see the module docstring). Never raises
    anything but :class:`InvalidEventError` for what a body contains.
    """
    if isinstance(body, dict):
        data = body
        try:
            raw = json.dumps(body, separators=(",", ":")).encode()
        except RecursionError:
            raise InvalidEventError(
                f"event is nested deeper than {MAX_NESTING_DEPTH} levels of objects and arrays (the depth limit)"
            ) from None
        except (TypeError, ValueError) as exc:
            raise InvalidEventError(f"event is not JSON-serializable: {exc}") from exc
        if len(raw) > MAX_EVENT_BYTES:
            raise _too_large(len(raw))
        check_nesting(raw)
    else:
        raw = body.encode() if isinstance(body, str) else body
        if len(raw) > MAX_EVENT_BYTES:
            raise _too_large(len(raw))
        check_nesting(raw)
        # fast path: pydantic-core parses (with its own depth guard) and validates in one go;
        # anything it rejects goes the slow way below, for leniency or a precise error
        try:
            return check_plausible(_EVENT_ADAPTER.validate_json(raw, context=EDGE_CONTEXT))
        except ValidationError:
            pass
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEventError(f"event body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEventError(
            f"event body must be a JSON object, not {type(data).__name__}"
        )
    event_type = data.get("eventType")
    if event_type not in ("query", "response"):
        raise InvalidEventError(
            f"field 'eventType' must be 'query' or 'response', got {event_type!r}",
            field="eventType",
        )
    data = _one_source(data)
    try:
        return check_plausible(_EVENT_ADAPTER.validate_python(data, context=EDGE_CONTEXT))
    except ValidationError as exc:
        culprits = _optional_culprits(exc, event_type)
        if not culprits:
            raise _strict_error(exc, event_type) from exc
        first_error = exc
    names = tuple(".".join(path) for path in culprits)
    try:
        event = _EVENT_ADAPTER.validate_python(_without(data, culprits), context={**EDGE_CONTEXT, "dropped_fields": names})
    except ValidationError as exc:
        raise _strict_error(exc, event_type) from first_error
    check_plausible(event)
    for name in names:
        _warn_once(
            f"dropped-field:{name}",
            "optional field %r out of its range in a %s event: dropped, the rest kept "
            "(documented ranges: matchQuality 0-1, times in ms >= 0, matchScore 0-100); "
            "further drops of this field are only counted",
            name,
            event_type,
        )
    return event


def load_event(body: str | bytes) -> QueryEvent | ResponseEvent:
    """Read back an event a store kept (written by :func:`to_json` after :func:`parse_event`).

    Not the edge: no plausible-range or seconds rule and no leniency, so a row
    stored before those rules loads as it was written (a store isolates one bad
    row itself). Still bounded: the depth limit holds, and the only error is
    :class:`InvalidEventError`.
    """
    raw = body.encode() if isinstance(body, str) else body
    check_nesting(raw)
    try:
        return _EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidEventError(f"stored event is not valid JSON: {exc}") from exc
        event_type = data.get("eventType") if isinstance(data, dict) else None
        raise _strict_error(exc, str(event_type)) from exc

