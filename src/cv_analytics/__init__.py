"""cv-analytics: a fire-and-forget analytics pipeline and async AI-jobs backbone for a CV chatbot.

``from cv_analytics import get_client`` gives the process-wide analytics
client configured from the environment; the parts live in their subpackages
(see docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["configure", "get_client"]


def __getattr__(name: str) -> Any:
    # lazy: importing cv_analytics.events must not import the wiring and every backend choice
    if name in __all__:
        from .wiring import client

        return getattr(client, name)
    raise AttributeError(f"module 'cv_analytics' has no attribute {name!r}")
