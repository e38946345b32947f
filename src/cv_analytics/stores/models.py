"""What the store keeps: correlated interactions and the events still waiting for their pair."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..events import EventShape, EventType, MatchType, QueryEvent, ResponseEvent, iso_week


class InteractionStatus(str, Enum):
    """How an interaction came to be written."""

    ANSWERED = "answered"
    #: a query whose response never came within the orphan timeout
    UNANSWERED = "unanswered"
    #: a response whose query never came within the orphan timeout
    ORPHAN_RESPONSE = "orphan_response"


class Interaction(BaseModel):
    """One recruiter question and the assistant's answer, correlated by id.

    Field names serialise in camelCase like the wire format (``correlationId``,
    ``totalTime``…), plus ``status`` and ``week``. ``timestamp`` and ``week``
    are the query's (the response's for an orphan response), in UTC.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    correlation_id: str
    status: InteractionStatus
    week: str
    timestamp: int
    session_id: str | None = None
    query: str | None = None
    response: str | None = None
    query_timestamp: int | None = None
    response_timestamp: int | None = None
    total_time: float | None = None
    llm_time: float | None = None
    retrieval_time: float | None = None
    cache_hit: bool | None = None
    match_quality: float | None = None
    match_type: MatchType | None = None
    match_score: float | None = None
    sources_used: list[str] = Field(default_factory=list)
    reasoning: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    shape: EventShape = EventShape.CURRENT
    processed_at: int = 0

    @classmethod
    def from_events(
        cls, query: QueryEvent | None, response: ResponseEvent | None, *, processed_at: int
    ) -> Interaction:
        if query is None and response is None:
            raise ValueError("an interaction needs a query, a response or both")
        if query is not None and response is not None:
            status = InteractionStatus.ANSWERED
        elif query is not None:
            status = InteractionStatus.UNANSWERED
        else:
            status = InteractionStatus.ORPHAN_RESPONSE
        anchor = query if query is not None else response
        assert anchor is not None
        fields: dict[str, object] = {
            "correlation_id": anchor.correlation_id,
            "status": status,
            "week": iso_week(anchor.timestamp),
            "timestamp": anchor.timestamp,
            "session_id": (query.session_id if query else None) or (response.session_id if response else None),
            "processed_at": processed_at,
            "shape": EventShape.LEGACY
            if any(e is not None and e.shape is EventShape.LEGACY for e in (query, response))
            else EventShape.CURRENT,
        }
        if query is not None:
            fields.update(
                query=query.query,
                query_timestamp=query.timestamp,
                user_agent=query.metadata.user_agent,
                referer=query.metadata.referer,
            )
        if response is not None:
            perf = response.performance
            fields.update(
                response=response.response,
                response_timestamp=response.timestamp,
                total_time=perf.total_time if perf else None,
                llm_time=perf.llm_time if perf else None,
                retrieval_time=perf.retrieval_time if perf else None,
                cache_hit=perf.cache_hit if perf else None,
                match_quality=response.metadata.match_quality,
                match_type=response.effective_match_type,
                match_score=response.effective_match_score,
                sources_used=list(response.metadata.sources_used),
                reasoning=response.reasoning,
            )
        return cls.model_validate(fields)

    def has_side(self, event_type: EventType) -> bool:
        if event_type is EventType.QUERY:
            return self.query_timestamp is not None
        return self.response_timestamp is not None

    def completed_with(self, event: QueryEvent | ResponseEvent, *, processed_at: int) -> Interaction:
        """This partial interaction with its missing side filled in from ``event``: now answered."""
        is_query = isinstance(event, QueryEvent)
        other = Interaction.from_events(
            event if is_query else None,  # type: ignore[arg-type]
            None if is_query else event,  # type: ignore[arg-type]
            processed_at=processed_at,
        )
        side = _QUERY_SIDE if is_query else _RESPONSE_SIDE
        update: dict[str, object] = {name: getattr(other, name) for name in side}
        if is_query:  # the query anchors timestamp and week
            update.update(timestamp=other.timestamp, week=other.week)
        update.update(
            session_id=self.session_id or other.session_id,
            shape=EventShape.LEGACY if EventShape.LEGACY in (self.shape, other.shape) else EventShape.CURRENT,
            status=InteractionStatus.ANSWERED,
            processed_at=processed_at,
        )
        return self.model_copy(update=update)

    def to_export(self) -> dict[str, object]:
        """camelCase dict for export: the wire names plus ``status`` and ``week``."""
        return self.model_dump(mode="json", by_alias=True)


_QUERY_SIDE = ("query", "query_timestamp", "user_agent", "referer")
_RESPONSE_SIDE = (
    "response",
    "response_timestamp",
    "total_time",
    "llm_time",
    "retrieval_time",
    "cache_hit",
    "match_quality",
    "match_type",
    "match_score",
    "sources_used",
    "reasoning",
)


@dataclass(frozen=True)
class PendingEvent:
    """An event waiting for its counterpart, until ``expires_at`` (ms)."""

    event: QueryEvent | ResponseEvent
    received_at: int
    expires_at: int


class RecordOutcome(str, Enum):
    """What recording one event did."""

    PENDING = "pending"  # waiting for its counterpart
    CORRELATED = "correlated"  # completed an interaction
    COMPLETED_LATE = "completed_late"  # filled in an unanswered/orphan interaction
    DUPLICATE = "duplicate"  # already counted: nothing written


@dataclass(frozen=True)
class SweepResult:
    """What one orphan sweep did."""

    unanswered: int = 0
    orphan_responses: int = 0
    #: pending events closed without an interaction (they would not decode, or no date holds
    #: their timestamp), each logged with its reason
    closed: int = 0

    @property
    def total(self) -> int:
        return self.unanswered + self.orphan_responses


@dataclass(frozen=True)
class StoreCounts:
    interactions: dict[InteractionStatus, int]
    pending_queries: int
    pending_responses: int

    @property
    def total_interactions(self) -> int:
        return sum(self.interactions.values())


@dataclass(frozen=True)
class ReportDelivery:
    """A weekly report that was delivered: the record that makes sending once possible."""

    week: str
    recipient: str
    channel: str
    sent_at: int


@dataclass(frozen=True)
class WeekSummary:
    """One ISO week of the week index: how many interactions it holds, and when the last was written."""

    week: str
    interactions: int
    #: ms since the epoch: the latest ``processed_at`` among them (the worker's last write into the week)
    last_processed_at: int
