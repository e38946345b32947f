"""The fire-and-forget analytics client: log events without waiting for the queue."""

from .client import AnalyticsClient, ClientStats, configure, get_client

__all__ = ["AnalyticsClient", "ClientStats", "configure", "get_client"]
