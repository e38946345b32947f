"""SQL versions of the report's aggregations for the SQLite store.

Placeholder mixin: the reporting work fills it in.
"""

from __future__ import annotations


class SQLiteInsightsQueries:
    """Mixed into :class:`~cv_analytics.stores.sqlite.SQLiteStore` before the generic mixin."""
