"""The fire-and-forget analytics client: log events without waiting for the queue.

The process-wide client configured from the environment is
:func:`cv_analytics.get_client` (made by the wiring, which knows the queue the
environment names).
"""

from .client import AnalyticsClient, ClientStats, install_sigterm_drain
from .spool_tools import ReplayResult, SpoolStatus, replay_spool, spool_status

__all__ = [
    "AnalyticsClient",
    "ClientStats",
    "ReplayResult",
    "SpoolStatus",
    "install_sigterm_drain",
    "replay_spool",
    "spool_status",
]
