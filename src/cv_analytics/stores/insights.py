"""Aggregations the weekly report needs, generic over any store.

Placeholder mixin: the reporting work fills it in (generic Python here, SQL
overrides in the SQLite backend).
"""

from __future__ import annotations


class InsightsQueries:
    """Mixed into :class:`~cv_analytics.stores.base.Store`."""
