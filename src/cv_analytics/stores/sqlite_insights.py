"""SQL versions of the report's aggregations for the SQLite store.

A week of a million interactions must report in seconds, so nothing here walks
interactions in Python. Skill resolution (a regular expression over the query
text) is the one step SQL cannot do: it runs when interactions are written,
through :meth:`SQLiteInsightsQueries._interactions_written`, into the derived
table ``interaction_terms`` (one row per query and skill, plus a fallback term
for queries that name no skill). The catalog those rows were resolved with is
recorded per week in ``interaction_terms_state``; a report that reads a week
with another catalog (the owner edited the file) re-resolves that week first,
once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import CVAnalyticsError
from .insights import (
    LOW_MATCH_SCORE,
    PERFORMANCE_METRICS,
    SCORE_BUCKET_WIDTH,
    SCORE_BUCKETS,
    GapKind,
    GapTally,
    InsightsQueries,
    SkillResolver,
    SkillTally,
    WeekActivity,
    WeekInsights,
    derivation_fingerprint,
    derive_terms,
    sort_skills,
)
from .models import InteractionStatus

if TYPE_CHECKING:
    from .models import Interaction

log = logging.getLogger(__name__)

#: Appended to ``sqlite.MIGRATIONS``. Statements are split on ";": none inside one.
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
        PRIMARY KEY (week, kind, term, correlation_id)
    ) WITHOUT ROWID;
    CREATE INDEX interaction_terms_correlation ON interaction_terms (correlation_id);
    CREATE INDEX interaction_terms_gaps ON interaction_terms (week, kind, term) WHERE gap > 0;

    CREATE TABLE interaction_terms_state (
        week        TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO interaction_terms_state (week, fingerprint) SELECT DISTINCT week, '' FROM interactions;
"""

#: A week whose derived rows are incomplete or of several catalogs.
_STALE = ""
_INSERT_TERM = (
    "INSERT OR REPLACE INTO interaction_terms "
    "(week, kind, term, correlation_id, in_query, in_sources, match_type, gap) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# Same figures as stores.insights.classify_gap / score_bucket, in SQL.
_GAP_SQL = (
    f"CASE WHEN status = '{InteractionStatus.ANSWERED.value}' AND match_type = 'none' THEN {GapKind.NO_MATCH:d} "
    f"WHEN status = '{InteractionStatus.ANSWERED.value}' AND match_type = 'partial' "
    f"AND match_score < {LOW_MATCH_SCORE!r} THEN {GapKind.LOW_MATCH:d} ELSE {GapKind.NONE:d} END"
)
_BUCKET_SQL = (
    f"CASE WHEN match_score IS NULL THEN NULL "
    f"ELSE MIN(CAST(match_score / {SCORE_BUCKET_WIDTH}.0 AS INTEGER), {SCORE_BUCKETS - 1}) END"
)
# The epoch began on a Thursday: (days + 3) % 7 is the ISO weekday with Monday = 0.
_ACTIVITY_SQL = f"""
    SELECT status, (timestamp / 86400000 + 3) % 7, (timestamp / 3600000) % 24,
           match_type, {_BUCKET_SQL}, cache_hit, {_GAP_SQL}, COUNT(*)
    FROM interactions WHERE week = ?
    GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
# A gap is grouped under the skills its query text names, or else its fallback term.
_GAP_ROWS = "week = ? AND gap > 0 AND (kind = 'term' OR in_query = 1)"


def _term_rows(
    resolver: SkillResolver,
    rows: Iterable[tuple[str, str, str, str | None, str, str | None, float | None]],
) -> Iterator[tuple[Any, ...]]:
    """interaction_terms rows for (correlation_id, week, status, query, sources_used JSON, match_type, match_score)."""
    for cid, week, status, query, sources, match_type, match_score in rows:
        derived = derive_terms(
            resolver,
            status=status,
            query=query,
            sources_used=json.loads(sources or "[]"),
            match_type=match_type,
            match_score=match_score,
        )
        if derived is None:
            continue
        gap = int(derived.gap)
        for skill, (in_query, in_sources) in derived.skills.items():
            yield (week, "skill", skill, cid, int(in_query), int(in_sources), match_type, gap)
        if derived.term:
            yield (week, "term", derived.term, cid, 1, 0, match_type, gap)


class SQLiteInsightsQueries(InsightsQueries):
    """Mixed into :class:`~cv_analytics.stores.sqlite.SQLiteStore` before the generic mixin."""

    if TYPE_CHECKING:  # provided by SQLiteStore

        def connection(self) -> sqlite3.Connection: ...

        def _guard(self) -> contextlib.AbstractContextManager[None]: ...

        def _transaction(self) -> contextlib.AbstractContextManager[None]: ...

    # -- keeping derived rows in step with interactions --------------------------

    def _interactions_written(self, conn: sqlite3.Connection, interactions: list[Interaction]) -> None:
        """Re-derive the terms of interactions just written, in the same transaction.

        A catalog that cannot be loaded must not stop the pipeline from
        recording interactions: the weeks touched are marked stale instead, and
        the next report re-derives them (or says what is wrong with the file).
        """
        if not interactions:
            return
        conn.executemany(
            "DELETE FROM interaction_terms WHERE correlation_id = ?", [(i.correlation_id,) for i in interactions]
        )
        weeks = {i.week for i in interactions}
        try:
            resolver = self.skills_catalog
        except CVAnalyticsError as exc:
            log.warning("skills not resolved for %d interaction(s): %s", len(interactions), exc)
            conn.executemany(
                "INSERT OR REPLACE INTO interaction_terms_state (week, fingerprint) VALUES (?, ?)",
                [(w, _STALE) for w in weeks],
            )
            return
        rows = (
            (
                i.correlation_id, i.week, i.status.value, i.query, json.dumps(i.sources_used),
                i.match_type.value if i.match_type else None, i.match_score,
            )
            for i in interactions
        )  # fmt: skip
        conn.executemany(_INSERT_TERM, _term_rows(resolver, rows))
        # A week stays current only while every write to it used the same catalog.
        conn.executemany(
            "INSERT INTO interaction_terms_state (week, fingerprint) VALUES (?, ?) "
            "ON CONFLICT (week) DO UPDATE SET fingerprint = "
            f"CASE WHEN fingerprint = excluded.fingerprint THEN fingerprint ELSE '{_STALE}' END",
            [(w, derivation_fingerprint(resolver)) for w in weeks],
        )

    def _ensure_terms(self, week: str, resolver: SkillResolver) -> None:
        """Re-derive ``week`` if its rows were not all derived with ``resolver``."""
        fingerprint = derivation_fingerprint(resolver)
        conn = self.connection()
        with self._guard():
            row = conn.execute("SELECT fingerprint FROM interaction_terms_state WHERE week = ?", (week,)).fetchone()
            if row is not None and row[0] == fingerprint:
                return
            has_rows = conn.execute("SELECT 1 FROM interactions WHERE week = ? LIMIT 1", (week,)).fetchone()
        if row is None and not has_rows:
            return  # nothing written for that week: nothing to derive
        log.info("resolving skills for %s with catalog %s", week, fingerprint)
        with self._transaction():
            conn.execute("DELETE FROM interaction_terms WHERE week = ?", (week,))
            cursor = conn.execute(
                "SELECT correlation_id, week, status, query, sources_used, match_type, match_score "
                "FROM interactions WHERE week = ?",
                (week,),
            )
            while chunk := cursor.fetchmany(5000):
                conn.executemany(_INSERT_TERM, _term_rows(resolver, chunk))
            conn.execute(
                "INSERT OR REPLACE INTO interaction_terms_state (week, fingerprint) VALUES (?, ?)", (week, fingerprint)
            )

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so every figure of a report sees the same data."""
        conn = self.connection()
        with self._guard():
            if conn.in_transaction:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    # -- aggregations ---------------------------------------------------------

    def week_insights(
        self, week: str, catalog: SkillResolver, *, max_gap_groups: int = 10, max_examples: int = 3
    ) -> WeekInsights:
        self._ensure_terms(week, catalog)
        with self._snapshot() as conn:
            activity = _activity(conn, week)
            performance = {
                metric: tuple(
                    (float(value), count)
                    for value, count in conn.execute(
                        f"SELECT {metric}, COUNT(*) FROM interactions WHERE week = ? AND {metric} IS NOT NULL "
                        f"GROUP BY {metric} ORDER BY {metric}",
                        (week,),
                    )
                )
                for metric in PERFORMANCE_METRICS
            }
            skills = _skill_tallies(conn, week)
            gaps = tuple(
                GapTally(kind, key, queries, no_match, low_match, _examples(conn, week, kind, key, max_examples))
                for kind, key, queries, no_match, low_match in conn.execute(
                    f"SELECT kind, term, COUNT(*), SUM(gap = {GapKind.NO_MATCH:d}), SUM(gap = {GapKind.LOW_MATCH:d}) "
                    f"FROM interaction_terms WHERE {_GAP_ROWS} "
                    "GROUP BY kind, term ORDER BY COUNT(*) DESC, kind, term LIMIT ?",
                    (week, max_gap_groups),
                ).fetchall()
            )
            (grouped,) = conn.execute(
                f"SELECT COUNT(DISTINCT correlation_id) FROM interaction_terms WHERE {_GAP_ROWS}", (week,)
            ).fetchone()
        return WeekInsights(
            week=week, activity=activity, performance=performance, skills=skills, gaps=gaps, grouped_gap_queries=grouped
        )

    def skill_tallies(self, week: str, catalog: SkillResolver) -> tuple[SkillTally, ...]:
        self._ensure_terms(week, catalog)
        with self._snapshot() as conn:
            return _skill_tallies(conn, week)


def _activity(conn: sqlite3.Connection, week: str) -> WeekActivity:
    status: dict[str, int] = {s.value: 0 for s in InteractionStatus}
    slots = [[0] * 24 for _ in range(7)]
    match = {"full": 0, "partial": 0, "none": 0, "unknown": 0}
    histogram = [0] * SCORE_BUCKETS
    cache_hits = cache_lookups = no_match = low_match = 0
    for row_status, weekday, hour, match_type, bucket, cache_hit, gap, count in conn.execute(_ACTIVITY_SQL, (week,)):
        status[row_status] += count
        if cache_hit is not None:
            cache_lookups += count
            cache_hits += count * cache_hit
        if row_status == InteractionStatus.ORPHAN_RESPONSE.value:
            continue
        slots[weekday][hour] += count
        if row_status == InteractionStatus.ANSWERED.value:
            match[match_type or "unknown"] += count
            if bucket is not None:
                histogram[bucket] += count
        no_match += count * (gap == GapKind.NO_MATCH)
        low_match += count * (gap == GapKind.LOW_MATCH)
    (sessions,) = conn.execute(
        "SELECT COUNT(DISTINCT session_id) FROM interactions WHERE week = ? AND query IS NOT NULL", (week,)
    ).fetchone()
    return WeekActivity(
        interactions=sum(status.values()),
        answered=status[InteractionStatus.ANSWERED.value],
        unanswered=status[InteractionStatus.UNANSWERED.value],
        orphan_responses=status[InteractionStatus.ORPHAN_RESPONSE.value],
        sessions=sessions,
        queries_by_slot=tuple(tuple(row) for row in slots),
        match_counts=match,
        score_histogram=tuple(histogram),
        cache_hits=cache_hits,
        cache_lookups=cache_lookups,
        no_match_queries=no_match,
        low_match_queries=low_match,
    )


def _skill_tallies(conn: sqlite3.Connection, week: str) -> tuple[SkillTally, ...]:
    return sort_skills(
        SkillTally(*row)
        for row in conn.execute(
            "SELECT term, COUNT(*), SUM(in_query), SUM(in_sources), SUM(match_type = 'full'), "
            "SUM(match_type = 'partial'), SUM(match_type = 'none') "
            "FROM interaction_terms WHERE week = ? AND kind = 'skill' GROUP BY term",
            (week,),
        )
    )


def _examples(conn: sqlite3.Connection, week: str, kind: str, key: str, limit: int) -> tuple[str, ...]:
    """Distinct query texts of one gap group, by latest occurrence (as ``insights.pick_examples``)."""
    rows: Sequence[tuple[str]] = conn.execute(
        "SELECT i.query FROM interaction_terms t JOIN interactions i ON i.correlation_id = t.correlation_id "
        "WHERE t.week = ? AND t.kind = ? AND t.term = ? AND t.gap > 0 AND (t.kind = 'term' OR t.in_query = 1) "
        "GROUP BY i.query ORDER BY MAX(i.timestamp) DESC, i.query LIMIT ?",
        (week, kind, key, limit),
    ).fetchall()
    return tuple(text for (text,) in rows)
