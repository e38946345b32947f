"""Retention: what ``cv-analytics prune`` (and the worker, once a day) removes, and what it keeps.

* pending events past their TTL (reads ignore them already; this frees the space),
* interactions older than the retention (400 days by default: a year-on-year
  comparison of the same week stays possible), with what the report derived from them,
* then the file is compacted (SQLite's incremental vacuum).

Finished jobs past their TTL are the jobs store's to prune (``JobStore``), called beside this.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import Clock, now_ms
from ..stores.base import Store

DAY_MS = 24 * 3600 * 1000
DEFAULT_RETENTION_DAYS = 400.0


@dataclass(frozen=True)
class PruneResult:
    expired_pending_events: int
    interactions: int
    #: the cutoff: interactions stamped before it were removed (ms since the epoch)
    interactions_before_ms: int

    def to_json(self) -> dict[str, int]:
        return {
            "expiredPendingEvents": self.expired_pending_events,
            "interactions": self.interactions,
            "interactionsBeforeMs": self.interactions_before_ms,
        }


def prune_store(store: Store, *, clock: Clock, retention_days: float = DEFAULT_RETENTION_DAYS) -> PruneResult:
    if retention_days <= 0:
        raise ValueError(f"retention_days must be positive, got {retention_days}")
    cutoff = now_ms(clock) - int(retention_days * DAY_MS)
    expired = store.purge_expired()
    removed = store.prune_interactions(cutoff)
    store.compact()
    return PruneResult(expired, removed, cutoff)
