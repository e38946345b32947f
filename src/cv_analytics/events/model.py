"""The event models: the two producer shapes, their fields and ranges, one internal form, the wire out."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .ids import deduplication_id, message_group_id


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


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str, *args: Any) -> None:
    """Log a warning the first time ``key`` comes up in this process; later ones at debug level."""
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    logger.log(logging.WARNING if first else logging.DEBUG, message, *args)


def to_wire(event: QueryEvent | ResponseEvent) -> dict[str, Any]:
    """The current wire shape (camelCase), leaving out absent fields."""
    data = event.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["eventType"] = event.event_type.value
    return data


def to_json(event: QueryEvent | ResponseEvent) -> str:
    """:func:`to_wire` as compact JSON, serialized by pydantic-core in one call (the same text)."""
    return event.model_dump_json(by_alias=True, exclude_none=True)
