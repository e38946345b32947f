"""The processor: correlate query and response events into interactions, exactly once."""

from .handler import AnalyticsHandler
from .worker import Worker, WorkerStats

__all__ = ["AnalyticsHandler", "Worker", "WorkerStats"]
