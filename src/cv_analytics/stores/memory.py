"""The in-memory store: the real correlation semantics through the same base, in one process.

For tests and the embedded tools that need no persistence. One lock makes each
load-to-apply atomic, as SQLite's transaction does, so threads may share it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from ..clock import Clock, now_ms
from ..events import EventType
from .base import DEFAULT_PENDING_TTL_SECONDS, Changes, PendingSides, Store
from .models import Interaction, InteractionStatus, PendingEvent, ReportDelivery, StoreCounts
from .plan import CorrelationPlan, CorrelationState, UnreadableHalf


class MemoryStore(Store):
    """Store backend on dicts, guarded by one re-entrant lock."""

    def __init__(
        self, *, clock: Clock | None = None, pending_ttl_seconds: float = DEFAULT_PENDING_TTL_SECONDS
    ) -> None:
        super().__init__(clock=clock, pending_ttl_seconds=pending_ttl_seconds)
        self._lock = threading.RLock()
        self._interactions: dict[str, Interaction] = {}
        self._pending: dict[str, dict[EventType, PendingEvent | UnreadableHalf]] = {}
        self._deliveries: dict[tuple[str, str], ReportDelivery] = {}

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:  # type: ignore[override]
        with self._lock:
            yield

    # -- primitives -----------------------------------------------------------

    def _load(self, correlation_ids: set[str], now: int) -> dict[str, CorrelationState]:
        states: dict[str, CorrelationState] = {}
        for cid in correlation_ids:
            interaction, halves = self._interactions.get(cid), self._pending.get(cid)
            if interaction is None and not halves:
                continue
            state = states[cid] = CorrelationState(interaction=interaction, pending_stored=bool(halves))
            for event_type, half in (halves or {}).items():
                if isinstance(half, UnreadableHalf):
                    state.unreadable[event_type] = half
                elif half.expires_at > now:
                    state.pending[event_type] = half
        return states

    def _apply(self, plans: Sequence[CorrelationPlan], now: int) -> set[str]:
        # under the lock taken before the load: nobody wrote in between
        changes = Changes.of(plans)
        self._interactions.update(changes.interaction_puts)
        for cid in changes.pending_deletes:
            self._pending.pop(cid, None)
        for (cid, event_type), pending in changes.pending_puts.items():
            self._pending.setdefault(cid, {})[event_type] = pending
        return set()

    def _stale_ids(self, cutoff: int, now: int, page_size: int) -> Iterator[list[str]]:
        with self._lock:
            stale = sorted(
                (half.received_at, cid)
                for cid, halves in self._pending.items()
                for half in halves.values()
                if half.received_at < cutoff and (isinstance(half, UnreadableHalf) or half.expires_at > now)
            )
        ids = list(dict.fromkeys(cid for _, cid in stale))
        for start in range(0, len(ids), page_size):
            yield ids[start : start + page_size]

    def put_unreadable(self, correlation_id: str, event_type: EventType, half: UnreadableHalf) -> None:
        """Store a pending half that does not decode, as a damaged row or item would be (tests)."""
        with self._lock:
            self._pending.setdefault(correlation_id, {})[event_type] = half

    # -- reads ----------------------------------------------------------------

    def get_interaction(self, correlation_id: str) -> Interaction | None:
        with self._lock:
            return self._interactions.get(correlation_id)

    def iter_interactions(self, week: str | None = None) -> Iterator[Interaction]:
        with self._lock:
            chosen = [i for i in self._interactions.values() if week is None or i.week == week]
        yield from sorted(chosen, key=lambda i: (i.timestamp, i.correlation_id))

    def counts(self) -> StoreCounts:
        by_status = {status: 0 for status in InteractionStatus}
        with self._lock:
            for interaction in self._interactions.values():
                by_status[interaction.status] += 1
            waiting = [self.get_pending(cid) for cid in self._pending]
        return StoreCounts(
            interactions=by_status,
            pending_queries=sum(EventType.QUERY in sides for sides in waiting),
            pending_responses=sum(EventType.RESPONSE in sides for sides in waiting),
        )

    def get_pending(self, correlation_id: str) -> PendingSides:
        now = now_ms(self.clock)
        with self._lock:
            halves = self._pending.get(correlation_id, {})
            return {t: h for t, h in halves.items() if isinstance(h, PendingEvent) and h.expires_at > now}

    # -- report deliveries ----------------------------------------------------

    def get_report_delivery(self, week: str, recipient: str) -> ReportDelivery | None:
        with self._lock:
            return self._deliveries.get((week, recipient))

    def record_report_delivery(self, delivery: ReportDelivery) -> None:
        with self._lock:
            self._deliveries[(delivery.week, delivery.recipient)] = delivery

    def recent_report_deliveries(self, limit: int = 5) -> list[ReportDelivery]:
        with self._lock:
            deliveries = list(self._deliveries.values())
        return sorted(deliveries, key=lambda d: (d.sent_at, d.week), reverse=True)[:limit]

    # -- maintenance ----------------------------------------------------------

    def prune_interactions(self, before_ms: int) -> int:
        with self._lock:
            old = [cid for cid, i in self._interactions.items() if i.timestamp < before_ms]
            for cid in old:
                del self._interactions[cid]
        return len(old)

    def purge_expired(self) -> int:
        now = now_ms(self.clock)
        removed = 0
        with self._lock:
            for cid in list(self._pending):
                halves = self._pending[cid]
                for event_type in [t for t, h in halves.items() if isinstance(h, PendingEvent) and h.expires_at <= now]:
                    del halves[event_type]
                    removed += 1
                if not halves:
                    del self._pending[cid]
        return removed
