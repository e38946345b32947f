"""The wire format of analytics events: validation and one internal form.

Two producer shapes are accepted (see ``shared/contract/``):

* current: ``correlationId``, ``sessionId``, ``performance``, ``metadata.matchQuality``
  (0–1) and ``metadata.sourcesUsed``;
* older: ``requestId`` instead of ``correlationId`` and, on responses, top-level
  ``matchType`` (full|partial|none), ``matchScore`` (0–100) and ``reasoning``.

Both parse into :class:`QueryEvent` / :class:`ResponseEvent`; :func:`to_wire`
writes the current shape back out.

Limits and ranges, the same on every path (the worker, ``send`` and the client):

* a body is at most 256 KiB (:data:`MAX_EVENT_BYTES`) and nested at most 32
  levels deep (:data:`MAX_NESTING_DEPTH`, the top-level object counting as one);
  deeper is an :class:`InvalidEventError`, never a ``RecursionError``;
* ``timestamp`` is milliseconds since the epoch between 2000-01-01 and
  2100-01-01 (:data:`MIN_TIMESTAMP_MS`, :data:`MAX_TIMESTAMP_MS`); outside it the
  event is invalid (``field="timestamp"``). A value below 10^11 cannot be
  milliseconds (that is March 1973) and is taken as *seconds*: it is converted
  to milliseconds, with a warning logged once per process, and the event says so
  (``converted_from_seconds``);
* optional fields have ranges: ``performance.totalTime``/``llmTime``/
  ``retrievalTime`` are milliseconds >= 0, ``metadata.matchQuality`` is 0–1,
  the older ``matchScore`` 0–100. An optional metadata or performance field out
  of its range (or of the wrong type) is *dropped* from the event, which is kept
  (``dropped_fields`` names what went; a warning is logged once per field);
  required fields (``eventType``, ``correlationId``, ``timestamp``, ``query``)
  and the texts stay strict;
* ``metadata.sourcesUsed`` given as one string is one source: ``"Python"`` is
  ``["Python"]``;
* the FIFO deduplication id of an event is :func:`deduplication_id`, which
  always fits SQS's 128 characters (and so does :func:`message_group_id`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import threading
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .exceptions import EventTooLargeError, InvalidEventError

#: SQS's message size limit, which every backend enforces so that moving to AWS loses nothing.
MAX_EVENT_BYTES = 256 * 1024

#: matchQuality (0–1) thresholds that map the current shape onto the older
#: full/partial/none classes: >= 0.8 is full, >= 0.5 partial, below that none.
#: The older producer's example scores 62/100 as "partial", which both agree with.
FULL_MATCH_THRESHOLD = 0.8
PARTIAL_MATCH_THRESHOLD = 0.5

#: Deepest nesting of objects and arrays a body may have (the event itself is level 1;
#: ``metadata`` level 2). Deeper bodies are refused before any recursive decoder sees them.
MAX_NESTING_DEPTH = 32

#: Plausible event times, in milliseconds since the epoch: 2000-01-01 (inclusive) to 2100-01-01.
MIN_TIMESTAMP_MS = 946_684_800_000
MAX_TIMESTAMP_MS = 4_102_444_800_000
#: Below this a timestamp is seconds, not milliseconds (10^11 ms is March 1973).
SECONDS_THRESHOLD = 10**11

#: SQS's limit on deduplication and message group ids.
MAX_SQS_ID_CHARS = 128

logger = logging.getLogger("cv_analytics.events")


class EventType(str, Enum):
    QUERY = "query"
    RESPONSE = "response"

    @property
    def counterpart(self) -> EventType:
        return EventType.RESPONSE if self is EventType.QUERY else EventType.QUERY


class MatchType(str, Enum):
    FULL = "full"
    PARTIAL = "partial"
    NONE = "none"


class EventShape(str, Enum):
    """Which producer shape an event arrived in."""

    CURRENT = "current"
    LEGACY = "legacy"


class _WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        str_strip_whitespace=False,
    )


class QueryMetadata(_WireModel):
    model_config = ConfigDict(extra="allow")

    user_agent: str | None = None
    referer: str | None = None


class Performance(_WireModel):
    """Timings of an answer, in milliseconds (>= 0); ``cacheHit`` whether it came from a cache."""

    total_time: Annotated[float, Field(ge=0)] | None = None
    llm_time: Annotated[float, Field(ge=0)] | None = None
    retrieval_time: Annotated[float, Field(ge=0)] | None = None
    cache_hit: bool | None = None


class ResponseMetadata(_WireModel):
    """``matchQuality`` 0–1 (how well the CV matched); ``sourcesUsed`` the CV skills or sections used."""

    model_config = ConfigDict(extra="allow")

    match_quality: Annotated[float, Field(ge=0, le=1)] | None = None
    sources_used: list[str] = Field(default_factory=list)


_CorrelationId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        validation_alias=AliasChoices("correlationId", "requestId", "correlation_id"),
        serialization_alias="correlationId",
    ),
]
_Timestamp = Annotated[int, Field(gt=0, description="milliseconds since the epoch")]
#: The validation context of the edge (parse_event, the client): the plausible-range and
#: seconds rules apply there. Models built directly in code (tests, stores) are not re-judged.
EDGE_CONTEXT: dict[str, Any] = {"edge": True}
#: Keys the wire may not set: they say what validation did to the event.
_INTERNAL_KEYS = ("shape", "converted_from_seconds", "convertedFromSeconds", "dropped_fields", "droppedFields")


class _EventBase(_WireModel):
    correlation_id: _CorrelationId
    timestamp: _Timestamp
    session_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    shape: EventShape = Field(default=EventShape.CURRENT, exclude=True)
    #: the timestamp arrived in seconds and was converted to milliseconds
    converted_from_seconds: bool = Field(default=False, exclude=True)
    #: optional fields dropped for being out of range, as dotted wire names
    dropped_fields: tuple[str, ...] = Field(default=(), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        extra: dict[str, Any] = {}
        # the older producer names the correlation id requestId
        if "requestId" in data and "correlationId" not in data:
            extra["shape"] = EventShape.LEGACY
        context = info.context
        timestamp = data.get("timestamp")
        if context and type(timestamp) in (int, float) and 0 < timestamp < SECONDS_THRESHOLD:
            extra["timestamp"] = int(timestamp * 1000)
            extra["converted_from_seconds"] = True
            _warn_once(
                "timestamp-seconds",
                "event timestamp %r is in seconds, not milliseconds since the epoch: converted to %d "
                "(send milliseconds, e.g. int(time.time() * 1000)); further conversions are not logged",
                timestamp,
                extra["timestamp"],
            )
        if context and context.get("dropped_fields"):
            extra["dropped_fields"] = tuple(context["dropped_fields"])
        # what validation did is not the sender's to say (an explicit chain: a generator costs ~0.5 µs)
        if (
            "shape" in data
            or "dropped_fields" in data
            or "droppedFields" in data
            or "converted_from_seconds" in data
            or "convertedFromSeconds" in data
        ):
            data = {k: v for k, v in data.items() if k not in _INTERNAL_KEYS}
        return {**data, **extra} if extra else data

    @property
    def dedup_id(self) -> str:
        """Deduplication id per *event* (see :func:`deduplication_id`)."""
        return deduplication_id(self.correlation_id, self.event_type.value)

    @property
    def group_id(self) -> str:
        """FIFO message group: the session, so sessions are processed in parallel.

        The older shape has no session; its correlation id keeps a query and its
        response in one group, in order. Always fits SQS (see :func:`message_group_id`).
        """
        return message_group_id(self.session_id or self.correlation_id)

    @property
    def week(self) -> str:
        return iso_week(self.timestamp)


class QueryEvent(_EventBase):
    event_type: Literal[EventType.QUERY] = EventType.QUERY
    query: Annotated[str, Field(max_length=MAX_EVENT_BYTES)]
    metadata: QueryMetadata = Field(default_factory=QueryMetadata)


class ResponseEvent(_EventBase):
    event_type: Literal[EventType.RESPONSE] = EventType.RESPONSE
    response: str | None = None
    performance: Performance | None = None
    metadata: ResponseMetadata = Field(default_factory=ResponseMetadata)
    # older producer's fields
    match_type: MatchType | None = None
    match_score: Annotated[float, Field(ge=0, le=100)] | None = None
    reasoning: str | None = None

    @property
    def effective_match_type(self) -> MatchType | None:
        """The older shape's matchType, else matchQuality classified by the documented thresholds."""
        if self.match_type is not None:
            return self.match_type
        return classify_match_quality(self.metadata.match_quality)

    @property
    def effective_match_score(self) -> float | None:
        """Match on a 0–100 scale: matchScore, else matchQuality × 100."""
        if self.match_score is not None:
            return float(self.match_score)
        if self.metadata.match_quality is not None:
            return round(self.metadata.match_quality * 100, 2)
        return None


Event = Annotated[Union[QueryEvent, ResponseEvent], Field(discriminator="event_type")]
_EVENT_ADAPTER: TypeAdapter[QueryEvent | ResponseEvent] = TypeAdapter(Event)


def classify_match_quality(quality: float | None) -> MatchType | None:
    if quality is None:
        return None
    if quality >= FULL_MATCH_THRESHOLD:
        return MatchType.FULL
    if quality >= PARTIAL_MATCH_THRESHOLD:
        return MatchType.PARTIAL
    return MatchType.NONE


def iso_week(timestamp_ms: int) -> str:
    """ISO 8601 week of a millisecond timestamp, in UTC: ``2026-W47``."""
    year, week, _ = dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.UTC).isocalendar()
    return f"{year}-W{week:02d}"


# -- ids that fit SQS ------------------------------------------------------------

#: Characters SQS allows in deduplication and group ids: alphanumerics and ASCII punctuation.
_SQS_ID_CHARS = re.compile(r"[!-~]+")
#: Characters of the original kept in front of the hash of a long id (readable in logs).
_HASHED_PREFIX_CHARS = 40


def _fits_sqs(text: str) -> bool:
    return len(text) <= MAX_SQS_ID_CHARS and _SQS_ID_CHARS.fullmatch(text) is not None


def _hashed(text: str) -> str:
    # a readable prefix (SQS-safe characters only) and the SHA-256 of the whole: stable, and
    # two different texts never share it, however long their common prefix
    prefix = "".join(ch for ch in text[:_HASHED_PREFIX_CHARS] if "!" <= ch <= "~")
    return f"{prefix}~{hashlib.sha256(text.encode()).hexdigest()}"


def deduplication_id(correlation_id: str, event_type: str) -> str:
    """The FIFO deduplication id of one event: the one rule every producer path uses.

    ``<correlationId>:<eventType>`` when that fits SQS (at most 128 characters,
    ASCII letters, digits and punctuation); otherwise a form that always fits
    (at most 105 characters): up to 40 characters of the plain form, ``~``, and the
    SHA-256 of the whole plain form. Stable (a resend deduplicates) and distinct
    for a query and its response, whatever the correlation id (the schema takes
    up to 256 characters).
    """
    plain = f"{correlation_id}:{event_type}"
    return plain if _fits_sqs(plain) else _hashed(plain)


def message_group_id(key: str) -> str:
    """A FIFO message group id for ``key`` (a session or correlation id) that always fits SQS.

    ``key`` itself when it fits (see :func:`deduplication_id`), else its stable hashed form.
    """
    return key if _fits_sqs(key) else _hashed(key)


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

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str, *args: Any) -> None:
    """Log a warning the first time ``key`` comes up in this process; later ones at debug level."""
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    logger.log(logging.WARNING if first else logging.DEBUG, message, *args)


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
    if field == "correlationId" or field == "correlation_id":
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


def to_wire(event: QueryEvent | ResponseEvent) -> dict[str, Any]:
    """The current wire shape (camelCase), leaving out absent fields."""
    data = event.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["eventType"] = event.event_type.value
    return data


def to_json(event: QueryEvent | ResponseEvent) -> str:
    """:func:`to_wire` as compact JSON, serialized by pydantic-core in one call (the same text)."""
    return event.model_dump_json(by_alias=True, exclude_none=True)
