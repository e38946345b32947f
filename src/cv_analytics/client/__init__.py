"""The fire-and-forget analytics client: log events without waiting for the queue."""

from .client import AnalyticsClient, ClientStats, configure, get_client, install_sigterm_drain
from .spool_tools import ReplayResult, SpoolStatus, replay_spool, spool_status

__all__ = [
    "AnalyticsClient",
    "ClientStats",
    "ReplayResult",
    "SpoolStatus",
    "configure",
    "get_client",
    "install_sigterm_drain",
    "replay_spool",
    "spool_status",
]
