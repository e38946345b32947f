"""The tables the weekly report reads, kept in the SQLite store's database.

``interaction_terms`` holds one row per query and catalog skill (plus a
fallback term for a query that names no skill); ``interaction_terms_state``
the catalog each week's rows were resolved with (``*``: none resolved yet, ``""``:
stale, resolve the whole week again). The store owns the schema; when it writes
interactions it only queues their ids in ``interaction_terms_pending``, in the
same transaction. :mod:`cv_analytics.insights.sqlite` resolves what is queued,
each interaction once: in batches from the worker's idle time, and before a
report reads a week. Resolving inside every write cost the worker ~15 µs per
event (bench/perf_probe.py).
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

#: Migration 3: the ids of interactions written since their terms were last resolved.
PENDING_TERMS_MIGRATION = """
    CREATE TABLE interaction_terms_pending (
        correlation_id TEXT PRIMARY KEY,
        week           TEXT NOT NULL
    ) WITHOUT ROWID
"""

#: The fingerprint of a week whose derived rows are incomplete or of several catalogs: resolve it all again.
STALE = ""
#: The fingerprint of a week none of whose rows were resolved yet: all its interactions are pending.
UNRESOLVED = "*"


def queue_for_terms(conn: sqlite3.Connection, interactions: Iterable[tuple[str, str]]) -> None:
    """In the write's transaction: (correlation id, week) of interactions whose terms must be (re)resolved."""
    rows = list(interactions)
    if not rows:
        return
    conn.executemany(
        "INSERT OR REPLACE INTO interaction_terms_pending (correlation_id, week) VALUES (?, ?)", rows
    )
    conn.executemany(
        "INSERT OR IGNORE INTO interaction_terms_state (week, fingerprint) VALUES (?, ?)",
        [(week, UNRESOLVED) for week in {w for _, w in rows}],
    )
