"""SQL versions of the weekly figures, over the SQLite store's database.

A week of a million interactions must report in seconds, so nothing here walks
interactions in Python. Skill resolution (a regular expression over the query
text) is the one step SQL cannot do: it fills the derived table
``interaction_terms`` (see :mod:`cv_analytics.stores.sqlite_report_tables`)
for a week the first time a report reads it after writes (the store marks
written weeks stale), and again when the catalog changed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..stores.models import InteractionStatus
from ..stores.sqlite_report_tables import UNRESOLVED
from .model import (
    PERFORMANCE_METRICS,
    SCORE_BUCKETS,
    GapKind,
    GapTally,
    SkillResolver,
    SkillTally,
    WeekActivity,
    WeekInsights,
    classify_gap,
    derivation_fingerprint,
    derive_terms,
    pick_examples,
    score_bucket,
    sort_skills,
)

if TYPE_CHECKING:
    from ..stores.sqlite import SQLiteStore

log = logging.getLogger(__name__)

#: Interactions resolved per transaction by :meth:`SQLiteInsights.resolve_pending`.
_PENDING_CHUNK = 5000
_INSERT_TERM = (
    "INSERT OR REPLACE INTO interaction_terms "
    "(week, kind, term, correlation_id, in_query, in_sources, match_type, gap, timestamp) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A gap is grouped under the skills its query text names, or else its fallback
# term; written exactly as in the partial indexes' WHERE. The gap queries name
# their index (INDEXED BY): without statistics the planner would pick the
# primary key and sort.
_GAP_ROWS = "gap > 0 AND (kind = 'term' OR in_query = 1)"
_HOUR_MS = 3_600_000


def _term_rows(
    resolver: SkillResolver,
    rows: Iterable[tuple[str, str, int, str, str | None, list[str] | str | None, str | None, float | None]],
) -> Iterator[tuple[Any, ...]]:
    """interaction_terms rows for (correlation_id, week, timestamp, status, query, sources_used (a list,
    or the JSON column), match_type, match_score)."""
    for cid, week, timestamp, status, query, sources, match_type, match_score in rows:
        derived = derive_terms(
            resolver,
            status=status,
            query=query,
            sources_used=json.loads(sources) if isinstance(sources, str) else (sources or []),
            match_type=match_type,
            match_score=match_score,
        )
        if derived is None:
            continue
        gap = int(derived.gap)
        for skill, (in_query, in_sources) in derived.skills.items():
            yield (week, "skill", skill, cid, int(in_query), int(in_sources), match_type, gap, timestamp)
        if derived.term:
            yield (week, "term", derived.term, cid, 1, 0, match_type, gap, timestamp)


class SQLiteInsights:
    """:class:`~cv_analytics.insights.Insights` in SQL over a :class:`~cv_analytics.stores.sqlite.SQLiteStore`.

    Takes the store (it owns the connections and the schema); the wiring
    composes the two for a SQLite store.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def resolve_pending(self, resolver: SkillResolver, *, limit: int | None = None) -> int:
        """Resolve the terms of interactions written since, up to ``limit`` of them; returns how many.

        Only weeks whose rows were resolved with ``resolver`` (or none yet) are
        done piecemeal; a week resolved with another catalog is redone whole when
        a report reads it (:meth:`_ensure_terms`). The worker calls this in its
        idle time, so a weekly report finds little or nothing left to do.
        """
        fingerprint = derivation_fingerprint(resolver)
        conn = self.store.connection()
        done = 0
        while limit is None or done < limit:
            chunk = _PENDING_CHUNK if limit is None else min(_PENDING_CHUNK, limit - done)
            with self.store.transaction():
                rows = conn.execute(
                    "SELECT i.correlation_id, i.week, i.timestamp, i.status, i.query, i.sources_used, i.match_type, "
                    "i.match_score FROM interaction_terms_pending p "
                    "JOIN interaction_terms_state s ON s.week = p.week AND s.fingerprint IN (?, ?) "
                    "JOIN interactions i ON i.correlation_id = p.correlation_id LIMIT ?",
                    (fingerprint, UNRESOLVED, chunk),
                ).fetchall()
                if not rows:
                    break
                ids = [(row[0],) for row in rows]
                conn.executemany("DELETE FROM interaction_terms WHERE correlation_id = ?", ids)
                conn.executemany(_INSERT_TERM, _term_rows(resolver, rows))
                conn.executemany("DELETE FROM interaction_terms_pending WHERE correlation_id = ?", ids)
                conn.executemany(
                    "UPDATE interaction_terms_state SET fingerprint = ? WHERE week = ? AND fingerprint = ?",
                    [(fingerprint, week, UNRESOLVED) for week in {row[1] for row in rows}],
                )
            done += len(rows)
            if len(rows) < chunk:
                break
        return done

    def _ensure_terms(self, week: str, resolver: SkillResolver) -> None:
        """Make ``week``'s rows current with ``resolver``: what was written since, or the whole
        week again when it was resolved with another catalog (the owner edited it)."""
        self.resolve_pending(resolver)
        fingerprint = derivation_fingerprint(resolver)
        conn = self.store.connection()
        with self.store.guard():
            row = conn.execute("SELECT fingerprint FROM interaction_terms_state WHERE week = ?", (week,)).fetchone()
            if row is not None and row[0] == fingerprint:
                return
            has_rows = conn.execute("SELECT 1 FROM interactions WHERE week = ? LIMIT 1", (week,)).fetchone()
        if row is None and not has_rows:
            return  # nothing written for that week: nothing to derive
        log.info("resolving skills for %s with catalog %s", week, fingerprint)
        with self.store.transaction():
            conn.execute("DELETE FROM interaction_terms WHERE week = ?", (week,))
            conn.execute("DELETE FROM interaction_terms_pending WHERE week = ?", (week,))
            cursor = conn.execute(
                "SELECT correlation_id, week, timestamp, status, query, sources_used, match_type, match_score "
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
        conn = self.store.connection()
        with self.store.guard():
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
                GapTally(
                    kind,
                    key,
                    queries,
                    no_match,
                    low_match,
                    _examples(conn, week, kind, key, max_examples),
                    _matched(conn, week, kind, key),
                )
                for kind, key, queries, no_match, low_match in conn.execute(
                    f"SELECT kind, term, COUNT(*), SUM(gap = {GapKind.NO_MATCH:d}), SUM(gap = {GapKind.LOW_MATCH:d}) "
                    f"FROM interaction_terms INDEXED BY interaction_terms_gaps WHERE week = ? AND {_GAP_ROWS} "
                    "GROUP BY kind, term ORDER BY COUNT(*) DESC, kind, term LIMIT ?",
                    (week, max_gap_groups),
                ).fetchall()
            )
            (grouped,) = conn.execute(
                "SELECT COUNT(DISTINCT correlation_id) FROM interaction_terms INDEXED BY interaction_terms_gap_queries "
                f"WHERE week = ? AND {_GAP_ROWS}",
                (week,),
            ).fetchone()
        return WeekInsights(
            week=week, activity=activity, performance=performance, skills=skills, gaps=gaps, grouped_gap_queries=grouped
        )

    def skill_tallies(self, week: str, catalog: SkillResolver) -> tuple[SkillTally, ...]:
        self._ensure_terms(week, catalog)
        with self._snapshot() as conn:
            return _skill_tallies(conn, week)


def _week_start_ms(week: str) -> int:
    year, number = int(week[:4]), int(week[6:])
    return int(dt.datetime.combine(dt.date.fromisocalendar(year, number, 1), dt.time(), tzinfo=dt.UTC).timestamp()) * 1000


def _activity(conn: sqlite3.Connection, week: str) -> WeekActivity:
    status: dict[str, int] = {s.value: 0 for s in InteractionStatus}
    match = {"full": 0, "partial": 0, "none": 0, "unknown": 0}
    histogram = [0] * SCORE_BUCKETS
    cache_hits = cache_lookups = 0
    gaps = {GapKind.NO_MATCH: 0, GapKind.LOW_MATCH: 0, GapKind.NONE: 0}
    # One streaming pass over interactions_week_activity; buckets and gap kinds are
    # worked out in Python from the raw values, with the generic code's functions.
    for row_status, match_type, cache_hit, match_score, count in conn.execute(
        "SELECT status, match_type, cache_hit, match_score, COUNT(*) FROM interactions WHERE week = ? "
        "GROUP BY status, match_type, cache_hit, match_score",
        (week,),
    ):
        status[row_status] += count
        if cache_hit is not None:
            cache_lookups += count
            cache_hits += count * cache_hit
        if row_status == InteractionStatus.ANSWERED.value:
            match[match_type or "unknown"] += count
            if match_score is not None:
                histogram[score_bucket(match_score)] += count
        gaps[classify_gap(row_status, match_type, match_score)] += count
    # Queries per hour of the week: range counts on interactions_week_timestamp
    # (index only), less the orphan responses, which are not queries.
    start = _week_start_ms(week)
    per_hour = [
        conn.execute(
            "SELECT COUNT(*) FROM interactions WHERE week = ? AND timestamp >= ? AND timestamp < ?",
            (week, start + h * _HOUR_MS, start + (h + 1) * _HOUR_MS),
        ).fetchone()[0]
        for h in range(7 * 24)
    ]
    for (timestamp,) in conn.execute(
        "SELECT timestamp FROM interactions WHERE week = ? AND status = ?",
        (week, InteractionStatus.ORPHAN_RESPONSE.value),
    ):
        slot = (timestamp - start) // _HOUR_MS
        if 0 <= slot < len(per_hour):  # always, unless a row's week disagrees with its timestamp
            per_hour[slot] -= 1
    (sessions,) = conn.execute(
        "SELECT COUNT(DISTINCT session_id) FROM interactions WHERE week = ? AND status != ?",
        (week, InteractionStatus.ORPHAN_RESPONSE.value),
    ).fetchone()
    return WeekActivity(
        interactions=sum(status.values()),
        answered=status[InteractionStatus.ANSWERED.value],
        unanswered=status[InteractionStatus.UNANSWERED.value],
        orphan_responses=status[InteractionStatus.ORPHAN_RESPONSE.value],
        sessions=sessions,
        queries_by_slot=tuple(tuple(per_hour[d * 24 : (d + 1) * 24]) for d in range(7)),
        match_counts=match,
        score_histogram=tuple(histogram),
        cache_hits=cache_hits,
        cache_lookups=cache_lookups,
        no_match_queries=gaps[GapKind.NO_MATCH],
        low_match_queries=gaps[GapKind.LOW_MATCH],
    )


def _skill_tallies(conn: sqlite3.Connection, week: str) -> tuple[SkillTally, ...]:
    return sort_skills(
        SkillTally(*row)
        for row in conn.execute(
            "SELECT term, COUNT(*), SUM(in_query), SUM(in_sources), SUM(match_type IS 'full'), "
            "SUM(match_type IS 'partial'), SUM(match_type IS 'none') "
            "FROM interaction_terms WHERE week = ? AND kind = 'skill' GROUP BY term",
            (week,),
        )
    )


def _matched(conn: sqlite3.Connection, week: str, kind: str, key: str) -> int:
    """Queries about one skill (named in the text) or term that got a full or partial match."""
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM interaction_terms WHERE week = ? AND kind = ? AND term = ? "
        "AND match_type IN ('full', 'partial') AND (kind = 'term' OR in_query = 1)",
        (week, kind, key),
    ).fetchone()
    return int(count)


def _examples(conn: sqlite3.Connection, week: str, kind: str, key: str, limit: int) -> tuple[str, ...]:
    """Distinct query texts of one gap group, by latest occurrence (as ``insights.pick_examples``).

    Walks the group newest first (interaction_terms_gaps is in timestamp order)
    and stops once ``limit`` texts are found and older rows cannot tie with them.
    """
    latest: dict[str, int] = {}
    cursor = conn.execute(
        "SELECT t.timestamp, i.query FROM interaction_terms t JOIN interactions i ON i.correlation_id = t.correlation_id "
        "WHERE t.week = ? AND t.kind = ? AND t.term = ? AND t.gap > 0 AND (t.kind = 'term' OR t.in_query = 1) "
        "ORDER BY t.timestamp DESC",
        (week, kind, key),
    )
    for timestamp, text in cursor:
        if len(latest) >= limit and timestamp < min(latest.values()):
            break
        latest.setdefault(text, timestamp)
    cursor.close()
    return pick_examples(latest, limit)
