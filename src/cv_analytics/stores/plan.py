"""The correlation rules, once: stored state + events -> a plan, with the state it assumed.

Pure functions, no storage. :func:`plan_record` decides what recording one
correlation id's events does (either arrival order, within or across batches,
exactly once, late counterparts); :func:`plan_sweep` decides what the orphan
sweep does with one id's stale pending events. Each returns a
:class:`CorrelationPlan` whose ``assumed`` state is its precondition: a
backend applies the plan only while the stored state is still that one
(SQLite and memory trivially, holding a lock from load to apply; DynamoDB with
condition expressions), and otherwise reports the id so the base plans again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..events import EventType, QueryEvent, ResponseEvent
from .models import Interaction, InteractionStatus, PendingEvent, RecordOutcome

Event = QueryEvent | ResponseEvent
PendingSides = dict[EventType, PendingEvent]

_QUERY, _RESPONSE = EventType.QUERY, EventType.RESPONSE


@dataclass(frozen=True)
class UnreadableHalf:
    """A stored pending event that would not decode (or could not become an interaction)."""

    reason: str
    received_at: int
    body: str = ""


@dataclass
class CorrelationState:
    """What is stored under one correlation id, as a backend loaded it."""

    interaction: Interaction | None = None
    #: unexpired pending halves, decoded
    pending: PendingSides = field(default_factory=dict)
    #: unexpired pending halves that would not decode, with why
    unreadable: dict[EventType, UnreadableHalf] = field(default_factory=dict)
    #: a pending row or item exists for the id, expired halves included (something to delete)
    pending_stored: bool = False


#: The state of an id with nothing stored (shared: plans never mutate their state).
NOTHING_STORED = CorrelationState()


@dataclass
class CorrelationPlan:
    """The writes that make one id's outcomes true, valid while ``assumed`` still holds.

    Preconditions a backend that cannot lock must check:

    * ``interaction`` set and ``assumed.interaction`` None: create it only if absent;
      ``assumed.interaction`` set: replace it only while it still lacks :attr:`lacking`;
    * each half of ``new_pending``: only if that half is absent or expired (or is still
      the unreadable half ``assumed`` saw); and if, once written, a counterpart that
      ``assumed`` did not hold is there, the plan is stale (the later writer completes
      the pair on the next round);
    * ``remove_pending``: delete the id's pending events, unless one of
      ``keep_if_arrived`` (halves absent when planned) was written since.
    """

    correlation_id: str
    assumed: CorrelationState
    outcomes: list[RecordOutcome] = field(default_factory=list)
    interaction: Interaction | None = None
    new_pending: dict[EventType, PendingEvent] = field(default_factory=dict)
    remove_pending: bool = False
    keep_if_arrived: frozenset[EventType] = frozenset()
    #: stored halves the sweep closes without an interaction, with the reason (logged)
    closed: dict[EventType, UnreadableHalf] = field(default_factory=dict)

    @property
    def lacking(self) -> EventType | None:
        """The side the stored interaction lacked, when the plan completes one."""
        stored = self.assumed.interaction
        if stored is None or self.interaction is None:
            return None
        return _RESPONSE if stored.has_side(_QUERY) else _QUERY

    @property
    def created(self) -> InteractionStatus | None:
        """The status of the interaction this plan creates (None when it creates none)."""
        if self.interaction is None or self.assumed.interaction is not None:
            return None
        return self.interaction.status


def plan_record(
    correlation_id: str, events: Sequence[Event], state: CorrelationState, now: int, ttl_ms: int
) -> CorrelationPlan:
    """What recording ``events`` (all of ``correlation_id``, in arrival order) does to ``state``."""
    stored = state.interaction
    interaction = stored
    sides = dict(state.pending)
    # Both halves pending and no interaction: a writer saw both and stopped before
    # creating it (DynamoDB, no transaction). The first of these events completes it.
    repairing = False
    if interaction is None and _QUERY in sides and _RESPONSE in sides:
        interaction = _pair(sides[_QUERY].event, sides[_RESPONSE].event, now)
        repairing = True
    outcomes: list[RecordOutcome] = []
    new_pending: dict[EventType, PendingEvent] = {}
    for event in events:
        event_type = event.event_type
        if interaction is not None:
            if interaction.has_side(event_type):
                outcomes.append(RecordOutcome.CORRELATED if repairing else RecordOutcome.DUPLICATE)
                repairing = False
                continue
            interaction = interaction.completed_with(event, processed_at=now)
            outcomes.append(RecordOutcome.COMPLETED_LATE)
        elif event_type in sides:
            outcomes.append(RecordOutcome.DUPLICATE)
        elif event_type.counterpart in sides:
            counterpart = sides[event_type.counterpart].event
            interaction = _pair(event, counterpart, now) if event_type is _QUERY else _pair(counterpart, event, now)
            outcomes.append(RecordOutcome.CORRELATED)
        else:
            waiting = PendingEvent(event, received_at=now, expires_at=now + ttl_ms)
            sides[event_type] = new_pending[event_type] = waiting
            outcomes.append(RecordOutcome.PENDING)
    plan = CorrelationPlan(correlation_id, state, outcomes)
    if interaction is not stored:
        # an interaction written here is answered: every pending half of the id is spent
        plan.interaction = interaction
        plan.remove_pending = state.pending_stored
    else:
        plan.new_pending = new_pending
        # halves left beside an answered interaction (a crashed writer's) are duplicates now
        plan.remove_pending = (
            state.pending_stored and stored is not None and stored.status is InteractionStatus.ANSWERED
        )
    return plan


def plan_sweep(correlation_id: str, state: CorrelationState, cutoff: int, now: int) -> CorrelationPlan | None:
    """What the orphan sweep does with ``state`` if a pending half was received before ``cutoff``.

    A lone query becomes ``unanswered``, a lone response an ``orphan_response``;
    halves beside an interaction complete it or are dropped; a half that cannot
    become an interaction (it does not decode, its timestamp is out of range) is
    closed with the reason, and never stops the sweep of the other ids.
    None: nothing to do yet (nothing stale, or a fresh half still waits).
    """
    halves = [p.received_at for p in state.pending.values()] + [u.received_at for u in state.unreadable.values()]
    if not halves or min(halves) >= cutoff:
        return None
    if state.unreadable and state.pending and max(halves) >= cutoff:
        return None  # a fresh readable half still waits: close the unreadable one with it, later
    plan = CorrelationPlan(correlation_id, state, remove_pending=True, closed=dict(state.unreadable))
    existing = state.interaction
    try:
        interaction = _swept(existing, state.pending, now)
    except (ValueError, OverflowError, OSError) as exc:  # e.g. "year 3170843 is out of range"
        for event_type, pending in state.pending.items():
            plan.closed[event_type] = UnreadableHalf(f"cannot become an interaction: {exc}", pending.received_at)
        interaction = existing
    if interaction is not existing:
        plan.interaction = interaction
    final = interaction
    if final is None or final.status is not InteractionStatus.ANSWERED:
        # a half written since the plan (absent now) must stay: it completes the pair later
        plan.keep_if_arrived = frozenset(t for t in EventType if t not in state.pending and t not in state.unreadable)
    return plan


def _swept(existing: Interaction | None, pending: PendingSides, now: int) -> Interaction | None:
    query, response = pending.get(_QUERY), pending.get(_RESPONSE)
    if existing is None:
        if query is None and response is None:
            return None
        return Interaction.from_events(
            query.event if query else None,  # type: ignore[arg-type]
            response.event if response else None,  # type: ignore[arg-type]
            processed_at=now,
        )
    missing = [p for t, p in pending.items() if not existing.has_side(t)]
    if missing:  # a half written after the interaction (a very slow writer): complete it
        return existing.completed_with(missing[0].event, processed_at=now)
    return existing


def _pair(query: Event, response: Event, now: int) -> Interaction:
    return Interaction.from_events(query, response, processed_at=now)  # type: ignore[arg-type]
