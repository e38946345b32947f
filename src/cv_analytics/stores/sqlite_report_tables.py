"""The tables the weekly report reads, kept in the SQLite store's database.

``interaction_terms`` holds one row per query and catalog skill (plus a
fallback term for a query that names no skill); ``interaction_terms_state``
the catalog each week's rows were resolved with. The store owns the schema
and marks a week stale when it writes interactions into it; the report's
SQL (:mod:`cv_analytics.insights.sqlite`) resolves a stale week once, when it
first reads it. Resolving on every write cost the worker ~15 µs per event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

#: Appended to ``sqlite.MIGRATIONS``. Statements are split on ";": none inside one.
#:
#: SQLite has no hash aggregation: every GROUP BY that is not in index order
#: sorts all the week's rows (about 0.7 s per million each, measured). So each
#: aggregation reads a covering index whose order is its GROUP BY, and
#: streams. The indexes on ``interactions`` cost ~30% more disk there and are
#: what makes a million-row week report in about a second.
INSIGHTS_MIGRATION = """
    CREATE TABLE interaction_terms (
        week           TEXT NOT NULL,
        kind           TEXT NOT NULL,
        term           TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        in_query       INTEGER NOT NULL,
        in_sources     INTEGER NOT NULL,
        match_type     TEXT,
        gap            INTEGER NOT NULL,
        timestamp      INTEGER NOT NULL,
        PRIMARY KEY (week, kind, term, correlation_id)
    ) WITHOUT ROWID;
    CREATE INDEX interaction_terms_correlation ON interaction_terms (correlation_id);
    CREATE INDEX interaction_terms_gaps ON interaction_terms (week, kind, term, timestamp, gap, in_query)
        WHERE gap > 0 AND (kind = 'term' OR in_query = 1);
    CREATE INDEX interaction_terms_gap_queries ON interaction_terms (week, correlation_id)
        WHERE gap > 0 AND (kind = 'term' OR in_query = 1);

    CREATE TABLE interaction_terms_state (
        week        TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO interaction_terms_state (week, fingerprint) SELECT DISTINCT week, '' FROM interactions;

    CREATE INDEX interactions_week_activity ON interactions (week, status, match_type, cache_hit, match_score, timestamp);
    CREATE INDEX interactions_week_sessions ON interactions (week, session_id, status);
    CREATE INDEX interactions_week_total_time ON interactions (week, total_time);
    CREATE INDEX interactions_week_llm_time ON interactions (week, llm_time);
    CREATE INDEX interactions_week_retrieval_time ON interactions (week, retrieval_time)
"""

#: The fingerprint of a week whose derived rows are incomplete or of several catalogs.
STALE = ""


def mark_weeks_stale(conn: sqlite3.Connection, weeks: Iterable[str]) -> None:
    """In the write's transaction: these weeks' derived rows must be resolved again before a report reads them."""
    conn.executemany(
        "INSERT OR REPLACE INTO interaction_terms_state (week, fingerprint) VALUES (?, ?)",
        [(week, STALE) for week in set(weeks)],
    )
