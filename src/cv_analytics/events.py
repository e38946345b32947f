"""The wire format of analytics events: validation and one internal form.

Two producer shapes are accepted (see ``shared/contract/``):

* current: ``correlationId``, ``sessionId``, ``performance``, ``metadata.matchQuality``
  (0–1) and ``metadata.sourcesUsed``;
* older: ``requestId`` instead of ``correlationId`` and, on responses, top-level
  ``matchType`` (full|partial|none), ``matchScore`` (0–100) and ``reasoning``.

Both parse into :class:`QueryEvent` / :class:`ResponseEvent`; :func:`to_wire`
writes the current shape back out.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
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
    total_time: Annotated[float, Field(ge=0)] | None = None
    llm_time: Annotated[float, Field(ge=0)] | None = None
    retrieval_time: Annotated[float, Field(ge=0)] | None = None
    cache_hit: bool | None = None


class ResponseMetadata(_WireModel):
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


class _EventBase(_WireModel):
    correlation_id: _CorrelationId
    timestamp: _Timestamp
    session_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    shape: EventShape = Field(default=EventShape.CURRENT, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _detect_shape(cls, data: Any) -> Any:
        # the older producer names the correlation id requestId
        if isinstance(data, dict) and "requestId" in data and "correlationId" not in data:
            return {**data, "shape": EventShape.LEGACY}
        return data

    @property
    def dedup_id(self) -> str:
        """Deduplication id per *event*: query and response share the correlation id."""
        return f"{self.correlation_id}:{self.event_type.value}"

    @property
    def group_id(self) -> str:
        """FIFO message group: the session, so sessions are processed in parallel.

        The older shape has no session; its correlation id keeps a query and its
        response in one group, in order.
        """
        return self.session_id or self.correlation_id

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


def parse_event(body: str | bytes | dict[str, Any]) -> QueryEvent | ResponseEvent:
    """Validate one message body (JSON text or an already-decoded object).

    Raises :class:`EventTooLargeError` for a body over 256 KiB and
    :class:`InvalidEventError` naming the first offending field otherwise.
    """
    if not isinstance(body, dict):
        raw = body.encode() if isinstance(body, str) else body
        if len(raw) <= MAX_EVENT_BYTES:
            # fast path: pydantic-core parses and validates the JSON in one go;
            # anything it rejects goes the slow way below for a precise error
            try:
                return _EVENT_ADAPTER.validate_json(raw)
            except ValidationError:
                pass
    if isinstance(body, dict):
        data = body
        size = len(json.dumps(body, separators=(",", ":")).encode())
    else:
        raw = body.encode() if isinstance(body, str) else body
        size = len(raw)
        if size > MAX_EVENT_BYTES:
            raise EventTooLargeError(
                f"event body is {size} bytes, over the {MAX_EVENT_BYTES}-byte limit; "
                "shorten the query or response text",
                field=None,
            )
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEventError(f"event body is not valid JSON: {exc}") from exc
    if size > MAX_EVENT_BYTES:
        raise EventTooLargeError(
            f"event body is {size} bytes, over the {MAX_EVENT_BYTES}-byte limit; "
            "shorten the query or response text"
        )
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
    try:
        return _EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        if loc and loc[0] == event_type:  # the discriminator's tag leads the location
            loc = loc[1:]
        field = ".".join(str(part) for part in loc) or None
        if field == "correlationId" or field == "correlation_id":
            field = "correlationId"
            message = "field 'correlationId' (or 'requestId' in the older shape) is required and must be a non-empty string"
        else:
            message = f"field {field!r}: {first['msg']}"
        raise InvalidEventError(
            f"invalid {event_type} event: {message} ({exc.error_count()} error(s) in all)",
            field=field,
        ) from exc


def to_wire(event: QueryEvent | ResponseEvent) -> dict[str, Any]:
    """The current wire shape (camelCase), leaving out absent fields."""
    data = event.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["eventType"] = event.event_type.value
    return data


def to_json(event: QueryEvent | ResponseEvent) -> str:
    return json.dumps(to_wire(event), separators=(",", ":"), ensure_ascii=False)


def deduplication_id(correlation_id: str, event_type: str) -> str:
    plain = f"{correlation_id}:{event_type}"
    if len(plain) <= 128: return plain
    import hashlib; return f"{correlation_id[:60]}:{event_type}:{hashlib.sha256(plain.encode()).hexdigest()[:40]}"
