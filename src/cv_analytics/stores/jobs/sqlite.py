"""The embedded job store: its own SQLite file (``jobs.db`` in the data directory), WAL, schema by ``user_version``."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from ..._sqlite import SQLiteConnections, apply_migrations, corrupt_database_error, is_busy_error, is_corrupt_error
from ...clock import Clock
from ...exceptions import StoreError, StoreUnavailableError
from .base import JobStore
from .model import IdempotencyRecord, Job, JobStatus

#: Each entry migrates the schema from version i to i + 1. Append, never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE jobs (
        job_id           TEXT PRIMARY KEY,
        type             TEXT NOT NULL,
        input            TEXT NOT NULL,
        status           TEXT NOT NULL,
        attempts         INTEGER NOT NULL,
        progress         INTEGER,
        progress_message TEXT,
        result           TEXT,
        error            TEXT,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL,
        started_at       REAL,
        finished_at      REAL,
        expires_at       REAL NOT NULL,
        idempotency_key  TEXT,
        cancel_requested INTEGER NOT NULL,
        lease_owner      TEXT,
        lease_expires_at REAL,
        reported_status  TEXT,
        version          INTEGER NOT NULL
    );
    CREATE INDEX jobs_newest ON jobs (created_at DESC, job_id DESC);
    CREATE INDEX jobs_status_newest ON jobs (status, created_at DESC, job_id DESC);
    CREATE INDEX jobs_expires ON jobs (expires_at);

    CREATE TABLE idempotency_keys (
        key          TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        job_id       TEXT NOT NULL,
        expires_at   REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = tuple(Job.model_fields)
_JSON_COLUMNS = frozenset({"input", "result"})
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
_INSERT = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_UPDATE = (
    f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _COLUMNS if c != 'job_id')} WHERE job_id = ? AND version = ?"
)


def _row(job: Job) -> dict[str, Any]:
    data = job.model_dump()
    for column in _JSON_COLUMNS:
        if data[column] is not None:
            data[column] = json.dumps(data[column], ensure_ascii=False, separators=(",", ":"))
    data["status"] = job.status.value
    data["reported_status"] = None if job.reported_status is None else job.reported_status.value
    data["cancel_requested"] = int(job.cancel_requested)
    return data


def _job(row: Sequence[Any]) -> Job:
    data = dict(zip(_COLUMNS, row, strict=True))
    for column in _JSON_COLUMNS:
        if data[column] is not None:
            data[column] = json.loads(data[column])
    data["cancel_requested"] = bool(data["cancel_requested"])
    return Job.model_validate(data)


class SQLiteJobStore(JobStore):
    """Job store on one SQLite file; safe for several processes (the API, workers, result processors) at once."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None, busy_timeout: float = 10.0) -> None:
        super().__init__(clock=clock)
        self._db = SQLiteConnections(path, busy_timeout=busy_timeout)
        self.path = self._db.path
        self._migrate()

    def _migrate(self) -> None:
        with self._guard(), self._db.transaction() as conn:
            apply_migrations(conn, MIGRATIONS, self.path)

    def _guard(self) -> contextlib.AbstractContextManager[None]:
        return _translate_errors(self.path)

    # -- primitives -----------------------------------------------------------

    def _load(self, job_id: str) -> Job | None:
        with self._guard():
            row = self._db.get().execute(f"{_SELECT} WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def _insert(self, job: Job, key: IdempotencyRecord | None, now: float) -> IdempotencyRecord | None:
        row = _row(job)
        with self._guard(), self._db.transaction() as conn:
            if key is not None:
                held = conn.execute(
                    "SELECT key, request_hash, job_id, expires_at FROM idempotency_keys WHERE key = ? AND expires_at > ?",
                    (key.key, now),
                ).fetchone()
                if held is not None:
                    return IdempotencyRecord(key=held[0], request_hash=held[1], job_id=held[2], expires_at=held[3])
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency_keys (key, request_hash, job_id, expires_at) VALUES (?, ?, ?, ?)",
                    (key.key, key.request_hash, key.job_id, key.expires_at),
                )
            conn.execute(_INSERT, [row[c] for c in _COLUMNS])
        return None

    def _replace(self, job: Job, expected_version: int) -> bool:
        row = _row(job)
        values = [row[c] for c in _COLUMNS if c != "job_id"] + [job.job_id, expected_version]
        with self._guard(), self._db.transaction() as conn:
            return conn.execute(_UPDATE, values).rowcount == 1

    def _query(
        self, status: JobStatus | None, job_type: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> list[Job]:
        where = ["expires_at > ?"]
        params: list[Any] = [now]
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if job_type is not None:
            where.append("type = ?")
            params.append(job_type)
        if after is not None:
            where.append("(created_at, job_id) < (?, ?)")
            params.extend(after)
        sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY created_at DESC, job_id DESC LIMIT ?"
        with self._guard():
            rows = self._db.get().execute(sql, [*params, limit]).fetchall()
        return [_job(row) for row in rows]

    def _forget_key(self, key: str, job_id: str) -> None:
        with self._guard(), self._db.transaction() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE key = ? AND job_id = ?", (key, job_id))

    def _purge_expired(self, now: float) -> int:
        with self._guard(), self._db.transaction() as conn:
            jobs = conn.execute("DELETE FROM jobs WHERE expires_at <= ?", (now,)).rowcount
            keys = conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,)).rowcount
        return jobs + keys

    def _batch_write(self) -> contextlib.AbstractContextManager[Any]:
        # the connections' transactions are re-entrant: each change's own transaction joins this one
        return _batch(self)

    def ping(self) -> None:
        with self._guard():
            self._db.get().execute("SELECT 1").fetchone()

    @property
    def schema_version(self) -> int:
        return int(self._db.get().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()


@contextlib.contextmanager
def _translate_errors(path: os.PathLike[str] | str) -> Iterator[None]:
    """sqlite3 errors become the store's error types: busy/locked means retry later, damage is fatal."""
    try:
        yield
    except sqlite3.Error as exc:
        if is_corrupt_error(exc):
            raise corrupt_database_error(path, exc) from exc
        if is_busy_error(exc):
            raise StoreUnavailableError(f"job store {path} is unavailable ({exc}); retry later") from exc
        raise StoreError(f"job store {path}: {exc}") from exc


@contextlib.contextmanager
def _batch(store: SQLiteJobStore) -> Iterator[None]:
    with store._guard(), store._db.transaction():
        yield
