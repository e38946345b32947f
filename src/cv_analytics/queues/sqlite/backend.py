"""The embedded queue backend: one SQLite file holding every queue and its dead-letter queue."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator

from ..._sqlite import SQLiteConnections, corrupt_database_error, is_busy_error, is_corrupt_error
from ...clock import Clock, SystemClock
from ...exceptions import QueueError, QueueUnavailableError
from ..base import QueueBackend, QueueConfig
from ..presets import dead_letter_config, dead_letter_queue_name
from .notifier import Notifier, notifier_for
from .queue import SQLiteQueue
from .schema import MIGRATIONS, SCHEMA_VERSION, _check_queue_name, _config_from_json, _config_to_json

def _tune_connection(conn: sqlite3.Connection) -> None:
    # Checkpoints run in the background (see _sqlite.py): a commit no longer pays
    # their fsyncs. The WAL file is cut back to 64 MiB after a checkpoint resets it.
    conn.execute("PRAGMA journal_size_limit = 67108864")
    # 32 MiB of page cache per connection keeps those indexes' hot pages in memory.
    conn.execute("PRAGMA cache_size = -32768")
    conn.execute("PRAGMA temp_store = MEMORY")


class SQLiteQueueBackend(QueueBackend):
    """Queues in one SQLite file; safe for several threads and processes at once.

    ``busy_timeout`` is how long a write waits for another writer's lock before
    :class:`~cv_analytics.exceptions.QueueUnavailableError`. A long poll looks
    for other processes' sends every ``min_poll_interval`` seconds at first,
    doubling up to ``poll_interval``: a send soon after the last one (a steady
    stream of jobs) is seen within milliseconds, an idle receiver costs ~20
    cheap reads a second.
    Long polls wait on ``clock`` (``Clock.wait``), so a manual clock drives them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = SystemClock(),  # noqa: B008 - stateless, so one shared default is fine
        busy_timeout: float = 5.0,
        poll_interval: float = 0.05,
        min_poll_interval: float = 0.002,
    ) -> None:
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.poll_interval = poll_interval
        self.min_poll_interval = min(min_poll_interval, poll_interval)
        try:
            self._db = SQLiteConnections(path, busy_timeout=busy_timeout, on_connect=_tune_connection)
        except OSError as exc:
            raise QueueUnavailableError(
                f"cannot create the directory of queue database {path}: {exc}; check the path and permissions"
            ) from exc
        self.path = self._db.path
        self._notifier_key = os.path.realpath(self.path)
        self._queues: dict[str, SQLiteQueue] = {}
        self._lock = threading.Lock()
        with self.guard("open"):
            self._migrate()

    # -- schema ---------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        with self.guard("read the schema version of"):
            return self._schema_version(self._db.get())

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue_schema'"
        ).fetchone()
        if not exists:
            return 0
        row = conn.execute("SELECT version FROM queue_schema").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        # Read first: a current schema needs no write lock, so opening a busy
        # database does not wait behind its writers.
        if self._check_version(self._schema_version(self._db.get())) == SCHEMA_VERSION:
            return
        with self._db.transaction() as conn:
            version = self._check_version(self._schema_version(conn))
            conn.execute("CREATE TABLE IF NOT EXISTS queue_schema (version INTEGER NOT NULL)")
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute("DELETE FROM queue_schema")
            conn.execute("INSERT INTO queue_schema (version) VALUES (?)", (SCHEMA_VERSION,))

    def _check_version(self, version: int) -> int:
        if version > SCHEMA_VERSION:
            raise QueueError(
                f"queue database {self.path} has schema version {version}; this cv-analytics knows up to "
                f"{SCHEMA_VERSION}. Upgrade cv-analytics."
            )
        return version

    # -- queues ---------------------------------------------------------------

    def queue(self, name: str, config: QueueConfig | None = None) -> SQLiteQueue:
        """The queue ``name``, created with its dead-letter queue if missing.

        With ``config``, the stored configuration is updated to it (as SQS's
        SetQueueAttributes would); without, the stored one (or the default for a
        new queue) is used. Opening a dead-letter queue by name gives it without
        a dead-letter queue of its own.
        """
        _check_queue_name(name)
        with self._lock:
            cached = self._queues.get(name)
            if cached is not None and (config is None or cached.config == config):
                return cached
        with self.guard(f"open queue {name!r} in"):
            queue = self._open(name, config)
        with self._lock:
            self._queues[name] = queue
        return queue

    def _open(self, name: str, config: QueueConfig | None) -> SQLiteQueue:
        conn = self._db.get()
        row = conn.execute("SELECT id, config, dlq_id, is_dlq FROM queue_queues WHERE name = ?", (name,)).fetchone()
        if row is None or (config is not None and _config_from_json(row[1]) != config):
            with self._db.transaction() as conn:
                row = self._create_or_update(conn, name, config)
        queue_id, stored, dlq_id, is_dlq = row
        if is_dlq:
            return SQLiteQueue(self, name, config or _config_from_json(stored), queue_id, None)
        dlq_row = conn.execute("SELECT name, config FROM queue_queues WHERE id = ?", (dlq_id,)).fetchone()
        dlq = SQLiteQueue(self, dlq_row[0], _config_from_json(dlq_row[1]), dlq_id, None)
        return SQLiteQueue(self, name, config or _config_from_json(stored), queue_id, dlq)

    def _create_or_update(
        self, conn: sqlite3.Connection, name: str, config: QueueConfig | None
    ) -> tuple[int, str, int | None, int]:
        row = conn.execute("SELECT id, config, dlq_id, is_dlq FROM queue_queues WHERE name = ?", (name,)).fetchone()
        if row is not None:
            assert config is not None
            conn.execute("UPDATE queue_queues SET config = ? WHERE id = ?", (_config_to_json(config), row[0]))
            if row[2] is not None:
                conn.execute(
                    "UPDATE queue_queues SET config = ? WHERE id = ?",
                    (_config_to_json(dead_letter_config(config)), row[2]),
                )
            return row[0], _config_to_json(config), row[2], row[3]
        config = config or QueueConfig()
        dlq_name = dead_letter_queue_name(name)
        dlq = conn.execute("SELECT id FROM queue_queues WHERE name = ?", (dlq_name,)).fetchone()
        if dlq is None:
            dlq_id = conn.execute(
                "INSERT INTO queue_queues (name, config, is_dlq) VALUES (?, ?, 1)",
                (dlq_name, _config_to_json(dead_letter_config(config))),
            ).lastrowid
        else:
            dlq_id = dlq[0]
        text = _config_to_json(config)
        queue_id = conn.execute(
            "INSERT INTO queue_queues (name, config, dlq_id) VALUES (?, ?, ?)", (name, text, dlq_id)
        ).lastrowid
        assert queue_id is not None
        return queue_id, text, dlq_id, 0

    def queue_names(self) -> list[str]:
        """Every queue in the file, dead-letter queues included, by name."""
        with self.guard("list the queues of"):
            return [r[0] for r in self._db.get().execute("SELECT name FROM queue_queues ORDER BY name")]

    def close(self) -> None:
        """Close this process's connections (queues opened from here reconnect if used again)."""
        self._db.close()

    # -- plumbing shared by the queues ------------------------------------------

    @contextlib.contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn sqlite3 errors into :class:`QueueUnavailableError` (or, for a damaged file,
        :class:`DatabaseCorruptError`) that say what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            if is_corrupt_error(exc):  # no retry can help: a fatal error naming the file and how to check it
                raise corrupt_database_error(self.path, exc) from exc
            text = str(exc).lower()
            if is_busy_error(exc) and ("locked" in text or "busy" in text):
                hint = (
                    f"another connection held the write lock longer than busy_timeout={self.busy_timeout:g}s; "
                    "retry later"
                )
            else:
                hint = "check that the file and its directory exist and are readable and writable, then retry"
            raise QueueUnavailableError(f"cannot {action} queue database {self.path} ({exc}): {hint}") from exc

    def connection(self) -> sqlite3.Connection:
        return self._db.get()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction()

    def read_transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction(immediate=False)

    @property
    def notifier(self) -> Notifier:
        # looked up each time: the registry is replaced in a forked child
        return notifier_for(self._notifier_key)

