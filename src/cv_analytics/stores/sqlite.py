"""The embedded store: SQLite, one file, schema versioned with ``PRAGMA user_version``."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from .._sqlite import SQLiteConnections, apply_migrations, corrupt_database_error, is_busy_error, is_corrupt_error
from ..clock import Clock, now_ms
from ..events import EventType, to_json
from ..exceptions import StoreError, StoreUnavailableError
from .base import DEFAULT_PENDING_TTL_SECONDS, Changes, PendingSides, Store, decode_pending
from .models import Interaction, InteractionStatus, ReportDelivery, StoreCounts, WeekSummary
from .plan import CorrelationPlan, CorrelationState, UnreadableHalf
from .sqlite_report_tables import INSIGHTS_MIGRATION, PENDING_TERMS_MIGRATION, queue_for_terms

log = logging.getLogger(__name__)

#: Each entry migrates the schema from version i to i + 1. Append, never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE pending_events (
        correlation_id TEXT NOT NULL,
        event_type     TEXT NOT NULL,
        body           TEXT NOT NULL,
        shape          TEXT NOT NULL,
        received_at    INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        PRIMARY KEY (correlation_id, event_type)
    ) WITHOUT ROWID;
    CREATE INDEX pending_events_received ON pending_events (received_at);
    CREATE INDEX pending_events_expires ON pending_events (expires_at);

    CREATE TABLE interactions (
        correlation_id     TEXT PRIMARY KEY,
        status             TEXT NOT NULL,
        week               TEXT NOT NULL,
        timestamp          INTEGER NOT NULL,
        session_id         TEXT,
        query              TEXT,
        response           TEXT,
        query_timestamp    INTEGER,
        response_timestamp INTEGER,
        total_time         REAL,
        llm_time           REAL,
        retrieval_time     REAL,
        cache_hit          INTEGER,
        match_quality      REAL,
        match_type         TEXT,
        match_score        REAL,
        sources_used       TEXT NOT NULL DEFAULT '[]',
        reasoning          TEXT,
        user_agent         TEXT,
        referer            TEXT,
        shape              TEXT NOT NULL,
        processed_at       INTEGER NOT NULL
    );
    CREATE INDEX interactions_week_timestamp ON interactions (week, timestamp);

    CREATE TABLE report_deliveries (
        week      TEXT NOT NULL,
        recipient TEXT NOT NULL,
        channel   TEXT NOT NULL,
        sent_at   INTEGER NOT NULL,
        PRIMARY KEY (week, recipient)
    );
    """,
    # 2: skills resolved per query, for the weekly report (see sqlite_report_tables.py)
    INSIGHTS_MIGRATION,
    # 3: interactions whose skills are still to be resolved (off the write path)
    PENDING_TERMS_MIGRATION,
]
SCHEMA_VERSION = len(MIGRATIONS)

INTERACTION_COLUMNS = (
    "correlation_id", "status", "week", "timestamp", "session_id", "query", "response",
    "query_timestamp", "response_timestamp", "total_time", "llm_time", "retrieval_time",
    "cache_hit", "match_quality", "match_type", "match_score", "sources_used", "reasoning",
    "user_agent", "referer", "shape", "processed_at",
)  # fmt: skip
_SELECT_INTERACTION = f"SELECT {', '.join(INTERACTION_COLUMNS)} FROM interactions"
_INSERT_INTERACTION = (
    f"INSERT OR REPLACE INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(INTERACTION_COLUMNS))})"
)
# SQLite's default limit on host parameters is 999 on old builds; stay well under it.
_IN_CHUNK = 400


#: ``PRAGMA auto_vacuum`` = INCREMENTAL
_INCREMENTAL_VACUUM = 2


def _tune_connection(conn: sqlite3.Connection) -> None:
    # The hot table's indexes are keyed by random correlation ids: keep their pages cached.
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA temp_store = MEMORY")


def interaction_row(interaction: Interaction) -> tuple[Any, ...]:
    """An interaction as a row of the interactions table (column order above)."""
    i = interaction
    return (
        i.correlation_id, i.status.value, i.week, i.timestamp, i.session_id, i.query, i.response,
        i.query_timestamp, i.response_timestamp, i.total_time, i.llm_time, i.retrieval_time,
        None if i.cache_hit is None else int(i.cache_hit), i.match_quality,
        i.match_type.value if i.match_type else None, i.match_score,
        json.dumps(i.sources_used, ensure_ascii=False), i.reasoning, i.user_agent, i.referer,
        i.shape.value, i.processed_at,
    )  # fmt: skip


def _interaction_from_row(row: Sequence[Any]) -> Interaction:
    data = dict(zip(INTERACTION_COLUMNS, row, strict=True))
    data["sources_used"] = json.loads(data["sources_used"] or "[]")
    if data["cache_hit"] is not None:
        data["cache_hit"] = bool(data["cache_hit"])
    return Interaction.model_validate(data)


class SQLiteStore(Store):
    """Store backend on one SQLite file; safe for several processes at once."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        pending_ttl_seconds: float = DEFAULT_PENDING_TTL_SECONDS,
        busy_timeout: float = 10.0,
    ) -> None:
        super().__init__(clock=clock, pending_ttl_seconds=pending_ttl_seconds)
        self._db = SQLiteConnections(path, busy_timeout=busy_timeout, on_connect=_tune_connection)
        self.path = self._db.path
        self._start_incremental_vacuum()
        self._migrate()

    # -- schema ---------------------------------------------------------------

    def _start_incremental_vacuum(self) -> None:
        """A new file is made with incremental vacuum, so pruning can give space back without a VACUUM."""
        with self._guard():
            conn = self._db.get()
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                conn.execute(f"PRAGMA auto_vacuum = {_INCREMENTAL_VACUUM}")
                conn.execute("VACUUM")  # in WAL mode the setting takes effect at a VACUUM: instant on an empty file

    def _migrate(self) -> None:
        with self._guard(), self._db.transaction() as conn:
            apply_migrations(conn, MIGRATIONS, self.path)

    @property
    def schema_version(self) -> int:
        return int(self._db.get().execute("PRAGMA user_version").fetchone()[0])

    # -- plumbing -------------------------------------------------------------

    def _guard(self) -> contextlib.AbstractContextManager[None]:
        return _translate_errors(self.path)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:  # type: ignore[override]
        with self._guard(), self._db.transaction():
            yield

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._guard():
            return self._db.get().execute(sql, params).fetchall()

    # -- primitives -----------------------------------------------------------

    def _load(self, correlation_ids: set[str], now: int) -> dict[str, CorrelationState]:
        conn = self._db.get()
        states: dict[str, CorrelationState] = {}
        ids = list(correlation_ids)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"{_SELECT_INTERACTION} WHERE correlation_id IN ({marks})", chunk):
                states[row[0]] = CorrelationState(interaction=_interaction_from_row(row))
            # expired rows too: they are the id's to delete once it is answered
            for cid, event_type, body, shape, received_at, expires_at in conn.execute(
                "SELECT correlation_id, event_type, body, shape, received_at, expires_at FROM pending_events "
                f"WHERE correlation_id IN ({marks})",
                chunk,
            ):
                state = states.get(cid) or states.setdefault(cid, CorrelationState())
                state.pending_stored = True
                if expires_at > now:
                    _load_half(state, EventType(event_type), body, shape, received_at, expires_at)
        return states

    def _apply(self, plans: Sequence[CorrelationPlan], now: int) -> set[str]:
        # Always inside the BEGIN IMMEDIATE transaction that loaded the state:
        # nobody wrote in between, every plan's preconditions hold.
        changes = Changes.of(plans)
        if changes:
            self._save(changes)
        return set()

    def _save(self, changes: Changes) -> None:
        conn = self._db.get()
        if changes.interaction_puts:
            conn.executemany(_INSERT_INTERACTION, [interaction_row(i) for i in changes.interaction_puts.values()])
            queue_for_terms(conn, ((i.correlation_id, i.week) for i in changes.interaction_puts.values()))
        if changes.pending_deletes:
            conn.executemany(
                "DELETE FROM pending_events WHERE correlation_id = ?", [(c,) for c in changes.pending_deletes]
            )
        if changes.pending_puts:
            conn.executemany(
                "INSERT OR REPLACE INTO pending_events "
                "(correlation_id, event_type, body, shape, received_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (cid, event_type.value, to_json(p.event), p.event.shape.value, p.received_at, p.expires_at)
                    for (cid, event_type), p in changes.pending_puts.items()
                ],
            )

    def _stale_ids(self, cutoff: int, now: int, page_size: int) -> Iterator[list[str]]:
        # Asked again after each page: the sweep removed what it handled, the rest comes next.
        while True:
            with self._guard():
                rows = self._db.get().execute(
                    "SELECT correlation_id FROM pending_events WHERE received_at < ? AND expires_at > ? "
                    "ORDER BY received_at LIMIT ?",
                    (cutoff, now, page_size),
                ).fetchall()
            if not rows:
                return
            yield list(dict.fromkeys(cid for (cid,) in rows))
            if len(rows) < page_size:
                return

    # -- reads ----------------------------------------------------------------

    def get_interaction(self, correlation_id: str) -> Interaction | None:
        rows = self._read(f"{_SELECT_INTERACTION} WHERE correlation_id = ?", (correlation_id,))
        return _interaction_from_row(rows[0]) if rows else None

    def iter_interactions(self, week: str | None = None) -> Iterator[Interaction]:
        sql, params = _SELECT_INTERACTION, ()
        if week is not None:
            sql, params = f"{sql} WHERE week = ?", (week,)
        sql += " ORDER BY timestamp, correlation_id"
        with self._guard():
            cursor = self._db.get().execute(sql, params)
            while rows := cursor.fetchmany(1000):
                for row in rows:
                    yield _interaction_from_row(row)

    def counts(self) -> StoreCounts:
        now = now_ms(self.clock)
        by_status = {status: 0 for status in InteractionStatus}
        for status, count in self._read("SELECT status, COUNT(*) FROM interactions GROUP BY status"):
            by_status[InteractionStatus(status)] = count
        pending = dict(
            self._read(
                "SELECT event_type, COUNT(*) FROM pending_events WHERE expires_at > ? GROUP BY event_type", (now,)
            )
        )
        return StoreCounts(
            interactions=by_status,
            pending_queries=pending.get(EventType.QUERY.value, 0),
            pending_responses=pending.get(EventType.RESPONSE.value, 0),
        )

    def get_pending(self, correlation_id: str) -> PendingSides:
        now = now_ms(self.clock)
        sides: PendingSides = {}
        for body, shape, received_at, expires_at in self._read(
            "SELECT body, shape, received_at, expires_at FROM pending_events "
            "WHERE correlation_id = ? AND expires_at > ?",
            (correlation_id, now),
        ):
            waiting = decode_pending(body, shape, received_at, expires_at)
            sides[waiting.event.event_type] = waiting
        return sides

    def get_report_delivery(self, week: str, recipient: str) -> ReportDelivery | None:
        rows = self._read(
            "SELECT week, recipient, channel, sent_at FROM report_deliveries WHERE week = ? AND recipient = ?",
            (week, recipient),
        )
        return ReportDelivery(*rows[0]) if rows else None

    def record_report_delivery(self, delivery: ReportDelivery) -> None:
        with self._guard(), self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO report_deliveries (week, recipient, channel, sent_at) VALUES (?, ?, ?, ?)",
                (delivery.week, delivery.recipient, delivery.channel, delivery.sent_at),
            )

    def recent_report_deliveries(self, limit: int = 5) -> list[ReportDelivery]:
        rows = self._read(
            "SELECT week, recipient, channel, sent_at FROM report_deliveries ORDER BY sent_at DESC, week DESC LIMIT ?",
            (limit,),
        )
        return [ReportDelivery(*row) for row in rows]

    def weeks(self) -> list[WeekSummary]:
        rows = self._read("SELECT week, COUNT(*), MAX(processed_at) FROM interactions GROUP BY week ORDER BY week")
        return [WeekSummary(*row) for row in rows]

    def purge_expired(self) -> int:
        with self._guard(), self._db.transaction() as conn:
            return conn.execute("DELETE FROM pending_events WHERE expires_at <= ?", (now_ms(self.clock),)).rowcount

    def prune_interactions(self, before_ms: int) -> int:
        old = "SELECT correlation_id FROM interactions WHERE timestamp < ?"
        with self._guard(), self._db.transaction() as conn:
            conn.execute(f"DELETE FROM interaction_terms WHERE correlation_id IN ({old})", (before_ms,))
            conn.execute(f"DELETE FROM interaction_terms_pending WHERE correlation_id IN ({old})", (before_ms,))
            return conn.execute("DELETE FROM interactions WHERE timestamp < ?", (before_ms,)).rowcount

    def compact(self) -> None:
        """Return free pages to the file system: incrementally; a file made before incremental
        vacuum was set is rebuilt once (``VACUUM``, which needs as much free disk as the file)."""
        with self._guard():
            conn = self._db.get()
            if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL_VACUUM:
                log.info("store %s: switching to incremental vacuum (a one-time VACUUM)", self.path)
                conn.execute(f"PRAGMA auto_vacuum = {_INCREMENTAL_VACUUM}")
                conn.execute("VACUUM")
            # sqlite3.execute steps a statement without result columns once (one page): executescript runs it to the end
            conn.executescript("PRAGMA incremental_vacuum;")

    def write_interactions(self, interactions: Sequence[Interaction]) -> None:
        """Insert interactions directly (bulk loads, benchmarks, migrations)."""
        with self._guard(), self._db.transaction() as conn:
            conn.executemany(_INSERT_INTERACTION, [interaction_row(i) for i in interactions])
            queue_for_terms(conn, ((i.correlation_id, i.week) for i in interactions))

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for read-only SQL (reports, exports)."""
        return self._db.get()

    def guard(self) -> contextlib.AbstractContextManager[None]:
        """sqlite3 errors as the store's errors (for SQL run on :meth:`connection`, as the report's)."""
        return self._guard()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction on :meth:`connection` (the report's derived tables)."""
        return self._transaction()

    def close(self) -> None:
        self._db.close()


def _load_half(
    state: CorrelationState, event_type: EventType, body: str, shape: str, received_at: int, expires_at: int
) -> None:
    """One stored half into ``state``; a half that does not decode is kept aside as unreadable."""
    try:
        state.pending[event_type] = decode_pending(body, shape, received_at, expires_at)
    except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others (issue 7, item 2)
        state.unreadable[event_type] = UnreadableHalf(f"does not decode: {exc}", received_at, body)


@contextlib.contextmanager
def _translate_errors(path: os.PathLike[str] | str) -> Iterator[None]:
    """sqlite3 errors become the store's error types: busy/locked means retry later."""
    try:
        yield
    except sqlite3.Error as exc:
        if is_corrupt_error(exc):
            raise corrupt_database_error(path, exc) from exc
        if is_busy_error(exc):
            raise StoreUnavailableError(f"store {path} is unavailable ({exc}); retry later") from exc
        raise StoreError(f"store {path}: {exc}") from exc
