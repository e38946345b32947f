"""Stores: pending events with TTL, interactions by ISO week, report deliveries."""

from .base import DEFAULT_PENDING_TTL_SECONDS, Store
from .models import (
    Interaction,
    InteractionStatus,
    PendingEvent,
    RecordOutcome,
    ReportDelivery,
    StoreCounts,
    SweepResult,
    WeekSummary,
)

__all__ = [
    "DEFAULT_PENDING_TTL_SECONDS",
    "Interaction",
    "InteractionStatus",
    "PendingEvent",
    "RecordOutcome",
    "ReportDelivery",
    "Store",
    "StoreCounts",
    "SweepResult",
    "WeekSummary",
]
