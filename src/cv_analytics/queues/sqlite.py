"""The embedded queue: SQS FIFO semantics on one SQLite file.

Every named queue and its dead-letter queue live in the same database file, so
the whole pipeline runs with nothing to install, and several worker processes
can share it (WAL mode, ``BEGIN IMMEDIATE`` for every claim, one connection per
thread and per process).

How it is laid out, and why:

``queue_messages``
    One row per stored message, ``seq`` (the rowid) giving arrival order.
    ``visible_at`` says when it can be delivered: after the queue's delay for a
    new message, after the visibility timeout for a received one. ``receipt``
    is a random token that changes on every delivery (one is drawn per receive,
    shared by the messages it delivers, so one statement marks them all): a
    receipt handle is ``<queue id>:<seq>:<token>``, so a handle from an earlier
    delivery no longer matches (see "stale receipt handles" below).

``queue_groups``
    One row per message group that has messages: ``head_seq`` (its oldest
    message) and ``ready_at``, when the group can deliver again, i.e. the end
    of the visibility of its in-flight messages, or its head's delay. A receive
    walks the index ``(queue_id, ready_at, head_seq)`` from the front, so it
    costs O(batch) however large the backlog: a blocked group is not even
    looked at, where "skip every message whose group has one in flight" would
    scan a big blocked group message by message. The rows are kept exact on
    every change (receive, delete, visibility change, dead-lettering, expiry).
    FIFO deliveries always take a run of messages from the head of a group, and
    a group delivers again only when nothing of it is in flight, so the
    messages received and not yet deleted are always among the group's first
    ``MAX_BATCH_SIZE`` messages: that bounds the work of recomputing a group.
    A standard (non-FIFO) queue puts each message in a group of its own.

    Groups are numbered (``gid``, the rowid) in order of creation and messages
    point at that number, not at the group name: session ids are random UUIDs,
    and an index keyed by them puts every insert and delete on a random page,
    each one a page written to the WAL at commit. Keyed by ``gid`` the message
    index grows at its end; only ``queue_groups_name`` (name → gid) is touched
    at random, once when a group appears and once when it empties.

``queue_dedup``
    Deduplication ids with the time their window ends. It outlives the message:
    SQS rejects a duplicate for the whole five minutes even after the first copy
    was deleted (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html),
    which moto does not reproduce and we do.

Semantics worth knowing:

* Stale receipt handles. A receipt handle is valid until the message is
  received again. ``delete`` with a stale handle is ignored, as SQS does for
  FIFO queues ("the request succeeds, but the message will not be deleted",
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessage.html):
  the newer delivery owns the message. ``change_visibility`` (and so ``fail``)
  with a stale handle raises :class:`~cv_analytics.exceptions.ReceiptHandleError`.
  A handle stays valid after its visibility timeout expired as long as nobody
  received the message again, so a slow worker can still delete what it did.
* Dead-lettering. A message received ``max_receive_count`` times moves to the
  dead-letter queue when it would be delivered again (the visibility timeout
  ran out without a delete), or at once when :meth:`Queue.fail` is called on
  its last receive. It keeps its id, group, deduplication id and sent time and
  gains the attributes ``failureReason``, ``sourceQueue`` and ``receiveCount``.
  As in SQS FIFO, its retention restarts when it enters the dead-letter queue,
  which keeps messages 14 days (or the source's retention, if longer).
* Retention. Expired messages are deleted lazily (when a receive meets them,
  and by a sweep at most once a minute per queue from send and receive); every
  read filters them, so they are never delivered nor counted.
* Durability. ``PRAGMA synchronous=NORMAL`` in WAL mode: a process crash loses
  nothing committed; a power cut or OS crash may lose the last transactions
  (https://www.sqlite.org/pragma.html#pragma_synchronous). At-least-once
  delivery upstream (the client's retries and spool) makes that acceptable for
  analytics; the cost of FULL is an fsync per batch.
* Long polling. A receiver waiting for messages is woken at once by senders in
  its own process (a condition variable per database file), notices other
  processes' commits by polling ``PRAGMA data_version`` every ``poll_interval``
  seconds (it changes when another connection commits; reading it takes no
  lock), and wakes by itself when an in-flight or delayed message becomes
  visible. With a clock other than :class:`~cv_analytics.clock.SystemClock`
  (a :class:`~cv_analytics.clock.ManualClock` in tests) a wait gives the
  process's other threads, if it has any, up to ``virtual_wait_grace`` real
  seconds to send, then moves the clock on with ``clock.sleep`` to the deadline
  or to the moment a message becomes visible: tests never block for the length
  of a long poll.
* Cost. A send writes each message's deduplication id and, for a new group,
  its name into B-trees keyed by random UUIDs: those pages, not the message
  rows, are most of what a commit writes (about 30 pages for ten analytics
  events). A bigger transaction shares pages between more messages and pays
  one commit for all: :meth:`SQLiteQueue.send_many` stores up to
  :data:`SEND_CHUNK` messages in one, at well under half the CPU per message
  of ``send_batch``'s ten. ``bench/queue_bench.py`` measures both.
* Errors. A locked or unreachable database raises
  :class:`~cv_analytics.exceptions.QueueUnavailableError` (retry later); no
  ``sqlite3`` error escapes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from .._ids import random_uuid4
from .._sqlite import SQLiteConnections, corrupt_database_error, is_busy_error, is_corrupt_error
from ..clock import Clock, SystemClock
from ..exceptions import QueueError, QueueUnavailableError, ReceiptHandleError
from .base import (
    FAILURE_REASON_ATTRIBUTE,
    MAX_BATCH_SIZE,
    MAX_WAIT_SECONDS,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    UNAVAILABLE_ERROR_CODE,
    Message,
    OutgoingMessage,
    Queue,
    QueueAttributes,
    QueueBackend,
    QueueConfig,
    SendOutcome,
    _DLQ_ONLY_ATTRIBUTES,
)

__all__ = ["SQLiteQueue", "SQLiteQueueBackend", "dead_letter_queue_name"]

#: Each entry migrates the queue schema from version i to i + 1. Append, never edit.
#: The version lives in ``queue_schema`` rather than ``PRAGMA user_version`` so the
#: queues can share a file with the store, which owns ``user_version``.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE queue_queues (
        id      INTEGER PRIMARY KEY,
        name    TEXT NOT NULL UNIQUE,
        config  TEXT NOT NULL,
        dlq_id  INTEGER,
        is_dlq  INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE queue_groups (
        gid       INTEGER PRIMARY KEY,
        queue_id  INTEGER NOT NULL,
        grp       TEXT NOT NULL,
        ready_at  REAL NOT NULL,
        head_seq  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX queue_groups_name ON queue_groups (queue_id, grp);
    -- UNIQUE (head_seq is unique anyway) lets the planner walk groups and their
    -- messages in (ready_at, head_seq, seq) order without a sort: see _CLAIM.
    CREATE UNIQUE INDEX queue_groups_ready ON queue_groups (queue_id, ready_at, head_seq);
    CREATE TABLE queue_messages (
        seq               INTEGER PRIMARY KEY,
        queue_id          INTEGER NOT NULL,
        gid               INTEGER NOT NULL,
        group_id          TEXT,
        message_id        TEXT NOT NULL,
        dedup_id          TEXT,
        body              TEXT NOT NULL,
        attributes        TEXT,
        sent_at           REAL NOT NULL,
        expires_at        REAL NOT NULL,
        visible_at        REAL NOT NULL,
        receive_count     INTEGER NOT NULL DEFAULT 0,
        receipt           INTEGER,
        failure_reason    TEXT,
        failed_on_receive INTEGER
    );
    CREATE INDEX queue_messages_group ON queue_messages (gid, seq);
    CREATE INDEX queue_messages_expiry ON queue_messages (queue_id, expires_at);
    CREATE TABLE queue_dedup (
        queue_id    INTEGER NOT NULL,
        dedup_id    TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        expires_at  REAL NOT NULL,
        PRIMARY KEY (queue_id, dedup_id)
    ) WITHOUT ROWID;
    CREATE INDEX queue_dedup_expiry ON queue_dedup (expires_at);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

#: A dead-letter queue keeps messages 14 days, the SQS maximum, so there is time to look at them.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600.0
#: How often (clock seconds) a queue sweeps expired messages and deduplication ids.
SWEEP_INTERVAL_SECONDS = 60.0
#: Rows one sweep deletes at most, so a sweep never holds the write lock for long.
SWEEP_CHUNK = 2000
#: Messages one redrive transaction moves.
REDRIVE_CHUNK = 500

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.fifo)?$")
_MAX_QUEUE_NAME = 80  # SQS's limit, .fifo included

_MESSAGE_COLUMNS = (
    "seq", "gid", "group_id", "message_id", "dedup_id", "body", "attributes", "sent_at", "expires_at",
    "receive_count", "failure_reason", "failed_on_receive",
)  # fmt: skip
_SEQ, _GID, _GROUP_ID, _MESSAGE_ID, _DEDUP_ID, _BODY, _ATTRS, _SENT_AT, _EXPIRES_AT = range(9)
_RECEIVE_COUNT, _FAILURE_REASON, _FAILED_ON_RECEIVE = 9, 10, 11
_M_COLUMNS = ", ".join(f"m.{c}" for c in _MESSAGE_COLUMNS)

# The receive: ready groups, oldest-ready first, and the visible messages of each
# in order. CROSS JOIN pins groups as the outer loop; with the unique index on
# (queue_id, ready_at, head_seq) SQLite needs no sort, so LIMIT stops the walk
# after the batch (checked by EXPLAIN QUERY PLAN in tests/queues/test_sqlite_backend.py).
_CLAIM = f"""
SELECT {_M_COLUMNS}
FROM queue_groups AS g CROSS JOIN queue_messages AS m ON m.gid = g.gid
WHERE g.queue_id = ?1 AND g.ready_at <= ?2 AND m.visible_at <= ?2
ORDER BY g.ready_at, g.head_seq, m.seq
LIMIT ?3
"""
_NEXT_IDS = (
    "SELECT (SELECT coalesce(max(seq), 0) FROM queue_messages), (SELECT coalesce(max(gid), 0) FROM queue_groups)"
)
_INSERT_MESSAGE = (
    "INSERT INTO queue_messages (seq, queue_id, gid, group_id, message_id, dedup_id, body, attributes, "
    "sent_at, expires_at, visible_at)"
)
_INSERT_GROUP = "INSERT INTO queue_groups (gid, queue_id, grp, ready_at, head_seq)"
_INSERT_DEDUP = "INSERT OR REPLACE INTO queue_dedup (queue_id, dedup_id, message_id, expires_at)"
_DROP_GROUPS_IF_EMPTY = (
    "DELETE FROM queue_groups WHERE gid IN ({marks}) "
    "AND NOT EXISTS (SELECT 1 FROM queue_messages AS m WHERE m.gid = queue_groups.gid) RETURNING gid"
)
# A group's head is its oldest message; it can deliver once the head is visible
# and none of its received messages is in flight. Received messages are among
# the first MAX_BATCH_SIZE (module docstring), hence the LIMIT.
_REFRESH_GROUP = f"""
UPDATE queue_groups SET
    head_seq = (SELECT seq FROM queue_messages WHERE gid = ?1 ORDER BY seq LIMIT 1),
    ready_at = max(
        (SELECT visible_at FROM queue_messages WHERE gid = ?1 ORDER BY seq LIMIT 1),
        coalesce((SELECT max(visible_at) FROM (
            SELECT visible_at, receive_count FROM queue_messages WHERE gid = ?1 ORDER BY seq LIMIT {MAX_BATCH_SIZE}
        ) WHERE receive_count > 0), -9e18))
WHERE gid = ?1
"""
_FIRST_READY = "SELECT min(ready_at) FROM queue_groups WHERE queue_id = ?"
# In-flight messages are received ones in groups that are not ready, among each group's first few.
_COUNT_IN_FLIGHT = f"""
SELECT count(*) FROM queue_groups AS g CROSS JOIN queue_messages AS m
ON m.seq IN (SELECT seq FROM queue_messages WHERE gid = g.gid ORDER BY seq LIMIT {MAX_BATCH_SIZE})
WHERE g.queue_id = ?1 AND g.ready_at > ?2 AND m.receive_count > 0 AND m.visible_at > ?2 AND m.expires_at > ?2
"""


class _NewMessage(NamedTuple):
    """A message about to be stored at the end of its group."""

    group_id: str | None
    message_id: str
    dedup_id: str | None
    body: str
    attributes: str | None  # JSON
    sent_at: float
    expires_at: float
    visible_at: float


def dead_letter_queue_name(name: str) -> str:
    """``orders`` → ``orders-dlq``; ``orders.fifo`` → ``orders-dlq.fifo`` (SQS wants the suffix last)."""
    if name.endswith(".fifo"):
        return f"{name[: -len('.fifo')]}-dlq.fifo"
    return f"{name}-dlq"


def dead_letter_config(config: QueueConfig) -> QueueConfig:
    """The configuration of a queue's dead-letter queue: same kind, kept longer, never delayed."""
    return dataclasses.replace(
        config, retention_seconds=max(config.retention_seconds, DLQ_RETENTION_SECONDS), delay_seconds=0.0
    )


def _check_queue_name(name: str) -> None:
    if not _QUEUE_NAME.match(name) or len(dead_letter_queue_name(name)) > _MAX_QUEUE_NAME:
        raise ValueError(
            f"invalid queue name {name!r}: use letters, digits, '-' and '_' (optionally ending in .fifo), "
            f"short enough that its dead-letter queue name stays within {_MAX_QUEUE_NAME} characters"
        )


def _config_to_json(config: QueueConfig) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def _config_from_json(text: str) -> QueueConfig:
    known = {f.name for f in dataclasses.fields(QueueConfig)}
    return QueueConfig(**{k: v for k, v in json.loads(text).items() if k in known})


def _parse_receipt_handle(handle: str) -> tuple[int, int, int] | None:
    parts = handle.split(":")
    if len(parts) != 3:
        return None
    try:
        return int(parts[0]), int(parts[1]), int(parts[2], 16)
    except ValueError:
        return None


def _new_receipt_token() -> int:
    # The module-level generator is reseeded in a forked child, so two processes
    # never hand out the same sequence of tokens.
    return random.getrandbits(62)


#: Handles per delete transaction (well under SQLite's limit on host parameters).
_DELETE_CHUNK = 500
#: Keys bound in one ``IN (...)`` list.
_IN_CHUNK = 500
#: Messages one :meth:`SQLiteQueue.send_many` transaction stores at most, which
#: bounds how long it holds the write lock (a few milliseconds per hundred).
SEND_CHUNK = 1000


def _marks(n: int) -> str:
    return ",".join("?" * n)


#: Rows one INSERT statement carries at most (a power of two: see _insert_rows).
_MAX_ROWS_PER_INSERT = 256


def _insert_rows(conn: sqlite3.Connection, insert: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``insert`` (``INSERT INTO t (columns)``) of ``rows``, many rows per statement.

    Not ``executemany``: it steps the statement once per row, and every step
    lets go of the GIL and takes it back. With another thread of the process
    busy in Python (the client's sender thread, a web server's request
    threads), taking it back waits up to a switch interval (5 ms), and the
    write lock is held all that while: a send of a few hundred messages would
    keep the worker out of the database for a second. A multi-row ``VALUES``
    is one step. Rows go in chunks of powers of two, so a handful of distinct
    statements, compiled once, serve every size.
    """
    if not rows:
        return
    width = len(rows[0])
    limit = min(_MAX_ROWS_PER_INSERT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    row_marks = f"({_marks(width)})"
    start = 0
    while start < len(rows):
        size = min(limit, 1 << ((len(rows) - start).bit_length() - 1))
        size = 1 << (size.bit_length() - 1)  # a power of two, however the limit falls
        chunk = rows[start : start + size]
        conn.execute(f"{insert} VALUES {','.join([row_marks] * size)}", [value for row in chunk for value in row])
        start += size


def _select_in(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...], keys: Iterable[Any]) -> dict[Any, Any]:
    """``dict`` of the two-column rows of ``sql ... IN (keys)``, keys bound in chunks
    under the host-parameter limit of older SQLite builds (999)."""
    keys = list(keys)
    found: dict[Any, Any] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        found.update(conn.execute(f"{sql} ({_marks(len(chunk))})", (*params, *chunk)).fetchall())
    return found


class _Notifier:
    """Wakes long polls in this process when a queue in the same database file changes."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._versions: dict[int, int] = {}

    def version(self, queue_id: int) -> int:
        return self._versions.get(queue_id, 0)

    def bump(self, *queue_ids: int) -> None:
        with self._cond:
            for queue_id in queue_ids:
                self._versions[queue_id] = self._versions.get(queue_id, 0) + 1
            self._cond.notify_all()

    def wait(self, queue_id: int, seen: int, timeout: float) -> bool:
        """Wait up to ``timeout`` real seconds for a change to ``queue_id``; True if one came."""
        with self._cond:
            return self._cond.wait_for(lambda: self._versions.get(queue_id, 0) != seen, timeout)


_NOTIFIERS: dict[str, _Notifier] = {}
_NOTIFIERS_LOCK = threading.Lock()


def _notifier_for(path: str) -> _Notifier:
    with _NOTIFIERS_LOCK:
        notifier = _NOTIFIERS.get(path)
        if notifier is None:
            notifier = _NOTIFIERS[path] = _Notifier()
        return notifier


def _forget_notifiers_in_child() -> None:
    # A lock held by another thread at fork() stays held forever in the child:
    # start afresh there rather than inherit any.
    global _NOTIFIERS_LOCK
    _NOTIFIERS_LOCK = threading.Lock()
    _NOTIFIERS.clear()


os.register_at_fork(after_in_child=_forget_notifiers_in_child)


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
    :class:`~cv_analytics.exceptions.QueueUnavailableError`. ``poll_interval``
    is how often a long poll looks for other processes' sends.
    ``virtual_wait_grace`` applies to clocks other than the system clock (see
    the module docstring).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = SystemClock(),  # noqa: B008 - stateless, so one shared default is fine
        busy_timeout: float = 5.0,
        poll_interval: float = 0.05,
        virtual_wait_grace: float = 0.5,
    ) -> None:
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.poll_interval = poll_interval
        self.virtual_wait_grace = virtual_wait_grace
        self.real_time = isinstance(clock, SystemClock)
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
        """Turn sqlite3 errors into :class:`QueueUnavailableError` that say what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            if is_corrupt_error(exc):
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
    def notifier(self) -> _Notifier:
        # looked up each time: the registry is replaced in a forked child
        return _notifier_for(self._notifier_key)


class SQLiteQueue(Queue):
    """One queue of a :class:`SQLiteQueueBackend`. Thread-safe; get it from ``backend.queue(name)``."""

    def __init__(
        self,
        backend: SQLiteQueueBackend,
        name: str,
        config: QueueConfig,
        queue_id: int,
        dead_letter_queue: SQLiteQueue | None,
    ) -> None:
        super().__init__(name, config)
        self._backend = backend
        self._id = queue_id
        self._dlq = dead_letter_queue
        self._clock = backend.clock
        self._next_sweep = float("-inf")

    def __repr__(self) -> str:
        return f"SQLiteQueue({self.name!r}, {str(self._backend.path)!r})"

    @property
    def dead_letter_queue(self) -> SQLiteQueue | None:
        return self._dlq

    # -- send -------------------------------------------------------------------

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Any number of messages, up to :data:`SEND_CHUNK` per transaction (see :meth:`Queue.send_many`).

        A transaction, not a message, is what costs: its commit writes every
        page it touched to the WAL, and the random keys of the deduplication
        ids share few pages between ten messages. Ten per request is SQS's API
        limit, not a semantic one, so here a sender with a backlog pays one
        commit for hundreds of messages.
        """
        outcomes, accepted = self._check_batch(messages)
        failure: QueueUnavailableError | None = None
        for start in range(0, len(accepted), SEND_CHUNK):
            part = accepted[start : start + SEND_CHUNK]
            if failure is None:
                try:
                    self._store_accepted(outcomes, part)
                except QueueUnavailableError as exc:
                    failure = exc
            if failure is not None:  # this part, and every one after it, is for a retry
                for index, _ in part:
                    outcomes[index] = SendOutcome(index, error_code=UNAVAILABLE_ERROR_CODE, error=str(failure))
        return [outcomes[i] for i in range(len(messages))]

    def _send_batch(self, messages: list[OutgoingMessage]) -> list[str | SendOutcome]:
        fifo = self.config.fifo
        ids: list[str | SendOutcome] = []
        with self._backend.guard(f"send to queue {self.name!r} in"), self._backend.transaction() as conn:
            now = self._clock.now()
            self._sweep_if_due(conn, now)
            known: dict[str, str] = {}
            if fifo:
                known = _select_in(
                    conn,
                    "SELECT dedup_id, message_id FROM queue_dedup WHERE queue_id = ? AND expires_at > ? AND dedup_id IN",
                    (self._id, now),
                    {m.dedup_id for m in messages if m.dedup_id is not None},
                )
            expires_at = now + self.config.retention_seconds
            visible_at = now + self.config.delay_seconds
            dedup_until = now + self.config.dedup_window_seconds
            entries: list[_NewMessage] = []
            dedups: list[tuple[Any, ...]] = []
            for message in messages:
                if fifo and message.dedup_id in known:
                    # a duplicate inside the window: accepted, not stored, the first copy's id
                    ids.append(SendOutcome(0, message_id=known[message.dedup_id], duplicate=True))
                    continue
                message_id = random_uuid4()
                ids.append(message_id)
                if fifo:
                    assert message.dedup_id is not None
                    known[message.dedup_id] = message_id
                    dedups.append((self._id, message.dedup_id, message_id, dedup_until))
                entries.append(
                    _NewMessage(
                        message.group_id,
                        message_id,
                        message.dedup_id if fifo else None,
                        message.body,
                        json.dumps(dict(message.attributes)) if message.attributes else None,
                        now,
                        expires_at,
                        visible_at,
                    )
                )
            if entries:
                self._append(conn, entries)
            _insert_rows(conn, _INSERT_DEDUP, dedups)
        if entries:
            self._backend.notifier.bump(self._id)
        return ids

    def _append(self, conn: sqlite3.Connection, entries: Sequence[_NewMessage]) -> None:
        """Store messages at the end of their groups, creating the groups that do not exist."""
        fifo = self.config.fifo
        seq, gid = conn.execute(_NEXT_IDS).fetchone()
        gids: dict[str, int] = {}
        if fifo:
            gids = _select_in(
                conn,
                "SELECT grp, gid FROM queue_groups WHERE queue_id = ? AND grp IN",
                (self._id,),
                {e.group_id for e in entries if e.group_id is not None},
            )
        rows: list[tuple[Any, ...]] = []
        groups: list[tuple[Any, ...]] = []
        for e in entries:
            seq += 1
            # On a standard queue every message is a group of its own, named after
            # its seq so the name index grows at its end.
            key = e.group_id if fifo and e.group_id is not None else f"~{seq:020d}"
            group = gids.get(key)
            if group is None:
                gid += 1
                group = gids[key] = gid
                groups.append((gid, self._id, key, e.visible_at, seq))
            rows.append(
                (seq, self._id, group, e.group_id, e.message_id, e.dedup_id, e.body, e.attributes,
                 e.sent_at, e.expires_at, e.visible_at)
            )  # fmt: skip
        _insert_rows(conn, _INSERT_GROUP, groups)
        _insert_rows(conn, _INSERT_MESSAGE, rows)

    # -- receive ----------------------------------------------------------------

    def _receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[Message]:
        backend = self._backend
        deadline = self._clock.now() + wait_seconds
        while True:
            seen = backend.notifier.version(self._id)
            data_version = self._data_version() if wait_seconds > 0 and backend.real_time else None
            messages, next_ready = self._claim(max_messages, visibility_timeout)
            if messages or wait_seconds <= 0:
                return messages
            now = self._clock.now()
            if now >= deadline:
                return []
            wake_at = deadline if next_ready is None else min(deadline, next_ready)
            self._wait(seen, data_version, wake_at)

    def _wait(self, seen: int, data_version: int | None, wake_at: float) -> None:
        backend, notifier = self._backend, self._backend.notifier
        if not backend.real_time:
            # Nobody in another process shares a virtual clock: only this process's
            # other threads can send. Give them a moment (if there are any), then move time on.
            grace = backend.virtual_wait_grace if threading.active_count() > 1 else 0.0
            if not notifier.wait(self._id, seen, grace):
                self._clock.sleep(max(0.0, wake_at - self._clock.now()))
            return
        while True:
            remaining = wake_at - self._clock.now()
            if remaining <= 0 or notifier.wait(self._id, seen, min(backend.poll_interval, remaining)):
                return
            if self._data_version() != data_version:
                return  # another connection (another process) committed something: look again

    def _data_version(self) -> int:
        with self._backend.guard(f"poll queue {self.name!r} in"):
            return int(self._backend.connection().execute("PRAGMA data_version").fetchone()[0])

    def _claim(self, max_messages: int, visibility_timeout: float) -> tuple[list[Message], float | None]:
        """Deliver up to ``max_messages``; when there is nothing, also say when something will be ready."""
        backend = self._backend
        with backend.guard(f"receive from queue {self.name!r} in"):
            conn = backend.connection()
            # Look before taking the write lock: idle receivers never queue behind writers.
            first_ready = conn.execute(
                _FIRST_READY, (self._id,)
            ).fetchone()[0]
            if first_ready is None or first_ready > self._clock.now():
                return [], first_ready
            with backend.transaction() as conn:
                now = self._clock.now()
                self._sweep_if_due(conn, now)
                messages, dead_lettered = self._claim_locked(conn, now, max_messages, visibility_timeout)
                next_ready = None
                if not messages:
                    next_ready = conn.execute(
                        "SELECT min(ready_at) FROM queue_groups WHERE queue_id = ? AND ready_at > ?", (self._id, now)
                    ).fetchone()[0]
        if dead_lettered and self._dlq is not None:
            backend.notifier.bump(self._dlq._id)
        return messages, next_ready

    def _claim_locked(
        self, conn: sqlite3.Connection, now: float, max_messages: int, visibility_timeout: float
    ) -> tuple[list[Message], bool]:
        visible_until = now + visibility_timeout
        max_receives = self.config.max_receive_count
        delivered: list[Message] = []
        delivered_groups: set[int] = set()
        dead_lettered = False
        while len(delivered) < max_messages:
            rows = conn.execute(_CLAIM, (self._id, now, max_messages - len(delivered))).fetchall()
            # One token for the round: a handle is <queue>:<seq>:<token>, so it still
            # names one delivery of one message, and the round's messages are
            # marked received in one statement rather than one each.
            token = _new_receipt_token()
            handle_prefix, handle_suffix = f"{self._id}:", f":{token:x}"
            claimed: list[int] = []
            expired: list[tuple[int]] = []
            poison: list[Sequence[Any]] = []
            round_groups: set[int] = set()
            touched: set[int] = set()
            for row in rows:
                seq, gid = row[_SEQ], row[_GID]
                if gid in delivered_groups:
                    # only with a zero visibility timeout: the group is ready again at
                    # once, and this call already handed out its head
                    continue
                if row[_EXPIRES_AT] <= now:
                    expired.append((seq,))
                    touched.add(gid)
                    continue
                if self._dlq is not None and row[_RECEIVE_COUNT] >= max_receives:
                    poison.append(row)
                    touched.add(gid)
                    continue
                claimed.append(seq)
                round_groups.add(gid)
                attributes = row[_ATTRS]
                delivered.append(
                    Message(
                        message_id=row[_MESSAGE_ID],
                        receipt_handle=f"{handle_prefix}{seq}{handle_suffix}",
                        body=row[_BODY],
                        group_id=row[_GROUP_ID],
                        dedup_id=row[_DEDUP_ID],
                        receive_count=row[_RECEIVE_COUNT] + 1,
                        sent_at=row[_SENT_AT],
                        attributes=json.loads(attributes) if attributes else {},
                    )
                )
            for start in range(0, len(claimed), _IN_CHUNK):
                chunk = claimed[start : start + _IN_CHUNK]
                conn.execute(
                    "UPDATE queue_messages SET receive_count = receive_count + 1, visible_at = ?, receipt = ? "
                    f"WHERE seq IN ({_marks(len(chunk))})",
                    (visible_until, token, *chunk),
                )
            if expired:
                conn.executemany("DELETE FROM queue_messages WHERE seq = ?", expired)
            if poison:
                dead_lettered = True
                self._move_to_dead_letter_queue(conn, now, [(row, self._timeout_reason(row)) for row in poison])
            # A group that delivered is in flight until the visibility timeout ends;
            # one that lost messages gets its head and readiness recomputed.
            in_flight = list(round_groups - touched)
            for start in range(0, len(in_flight), _IN_CHUNK):
                chunk = in_flight[start : start + _IN_CHUNK]
                conn.execute(
                    f"UPDATE queue_groups SET ready_at = ? WHERE gid IN ({_marks(len(chunk))})", (visible_until, *chunk)
                )
            self._refresh_groups(conn, touched)
            delivered_groups |= round_groups
            if not touched:
                break  # nothing was removed, so the query already returned all it could
        return delivered, dead_lettered

    def _timeout_reason(self, row: Sequence[Any]) -> str:
        if row[_FAILURE_REASON] is not None and row[_FAILED_ON_RECEIVE] == row[_RECEIVE_COUNT]:
            return str(row[_FAILURE_REASON])
        reason = (
            f"maxReceiveCount {self.config.max_receive_count} exceeded: visibility timeout expired without delete"
        )
        if row[_FAILURE_REASON] is not None:
            reason += f"; last failure (receive {row[_FAILED_ON_RECEIVE]}): {row[_FAILURE_REASON]}"
        return reason[:1024]

    def _move_to_dead_letter_queue(
        self, conn: sqlite3.Connection, now: float, entries: Sequence[tuple[Sequence[Any], str]]
    ) -> None:
        """Move rows to the end of their groups in the dead-letter queue, noting why and from where."""
        dlq = self._dlq
        assert dlq is not None
        expires_at = now + dlq.config.retention_seconds
        moved: list[_NewMessage] = []
        for row, reason in entries:
            attributes = json.loads(row[_ATTRS]) if row[_ATTRS] else {}
            attributes[FAILURE_REASON_ATTRIBUTE] = reason
            attributes[SOURCE_QUEUE_ATTRIBUTE] = self.name
            attributes[RECEIVE_COUNT_ATTRIBUTE] = str(row[_RECEIVE_COUNT])
            moved.append(
                _NewMessage(
                    row[_GROUP_ID], row[_MESSAGE_ID], row[_DEDUP_ID], row[_BODY], json.dumps(attributes),
                    row[_SENT_AT], expires_at, now,
                )
            )  # fmt: skip
        conn.executemany("DELETE FROM queue_messages WHERE seq = ?", [(row[_SEQ],) for row, _ in entries])
        dlq._append(conn, moved)

    def _refresh_groups(self, conn: sqlite3.Connection, gids: Iterable[int]) -> None:
        remaining = set(gids)
        if not remaining:
            return
        emptied = list(remaining)
        for start in range(0, len(emptied), _IN_CHUNK):
            chunk = emptied[start : start + _IN_CHUNK]
            remaining.difference_update(
                gid for (gid,) in conn.execute(_DROP_GROUPS_IF_EMPTY.format(marks=_marks(len(chunk))), chunk)
            )
        if remaining:
            conn.executemany(_REFRESH_GROUP, [(gid,) for gid in remaining])

    # -- acknowledge, extend, fail ------------------------------------------------

    def receive_many(
        self, max_messages: int, *, wait_seconds: float = 0.0, visibility_timeout: float | None = None
    ) -> list[Message]:
        """Up to ``max_messages`` claimed in one transaction (see :meth:`Queue.receive_many`)."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be 0–{MAX_WAIT_SECONDS:g}, got {wait_seconds}")
        timeout = self.config.visibility_timeout if visibility_timeout is None else visibility_timeout
        return self._receive(max_messages, wait_seconds, timeout)

    def delete_batch(self, receipt_handles: Sequence[str]) -> None:
        """Delete received messages, any number in one transaction.

        Ten per request is an SQS API limit, not a semantic one; here commits are
        the cost, so a worker acknowledging several batches pays for one."""
        for start in range(0, len(receipt_handles), _DELETE_CHUNK):
            self._delete_batch(list(receipt_handles[start : start + _DELETE_CHUNK]))

    def _delete_batch(self, receipt_handles: list[str]) -> None:
        wanted: dict[int, int] = {}
        for handle in receipt_handles:
            parsed = _parse_receipt_handle(handle)
            if parsed is not None and parsed[0] == self._id:
                wanted[parsed[1]] = parsed[2]
        if not wanted:
            return
        with self._backend.guard(f"delete from queue {self.name!r} in"), self._backend.transaction() as conn:
            rows = conn.execute(
                f"SELECT seq, receipt, gid, queue_id FROM queue_messages WHERE seq IN ({_marks(len(wanted))})",
                list(wanted),
            ).fetchall()
            # A stale handle (the message was received again since) deletes nothing. The
            # check is done here rather than in the DELETE's WHERE: a DELETE by rowids
            # alone is several times faster than one that must test each row.
            current = [(seq, gid) for seq, receipt, gid, queue_id in rows if queue_id == self._id and wanted[seq] == receipt]
            if not current:
                return
            conn.execute(
                f"DELETE FROM queue_messages WHERE seq IN ({_marks(len(current))})", [seq for seq, _ in current]
            )
            self._refresh_groups(conn, {gid for _, gid in current})
        self._backend.notifier.bump(self._id)

    def _change_visibility(self, receipt_handle: str, timeout_seconds: float, reason: str | None) -> None:
        seq, token = self._parse_own_handle(receipt_handle)
        with self._backend.guard(f"change visibility in queue {self.name!r} of"), self._backend.transaction() as conn:
            now = self._clock.now()
            row = conn.execute(
                "UPDATE queue_messages SET visible_at = ?1, "
                "failure_reason = coalesce(?2, failure_reason), "
                "failed_on_receive = CASE WHEN ?2 IS NULL THEN failed_on_receive ELSE receive_count END "
                "WHERE seq = ?3 AND queue_id = ?4 AND receipt = ?5 RETURNING gid",
                (now + timeout_seconds, reason, seq, self._id, token),
            ).fetchone()
            if row is None:
                raise self._stale(receipt_handle)
            self._refresh_groups(conn, (row[0],))
        self._backend.notifier.bump(self._id)

    def _dead_letter(self, message: Message, reason: str) -> None:
        if self._dlq is None:
            raise QueueError(f"queue {self.name!r} is a dead-letter queue and has none of its own")
        seq, token = self._parse_own_handle(message.receipt_handle)
        with self._backend.guard(f"dead-letter a message of queue {self.name!r} in"), self._backend.transaction() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM queue_messages WHERE seq = ? AND queue_id = ? AND receipt = ?",
                (seq, self._id, token),
            ).fetchone()
            if row is None:
                raise self._stale(message.receipt_handle)
            self._move_to_dead_letter_queue(conn, self._clock.now(), [(row, reason)])
            self._refresh_groups(conn, (row[_GID],))
        self._backend.notifier.bump(self._id, self._dlq._id)

    def _parse_own_handle(self, receipt_handle: str) -> tuple[int, int]:
        parsed = _parse_receipt_handle(receipt_handle)
        if parsed is None or parsed[0] != self._id:
            raise ReceiptHandleError(
                f"{receipt_handle!r} is not a receipt handle of queue {self.name!r}: "
                "pass the receipt_handle of a message received from this queue"
            )
        return parsed[1], parsed[2]

    def _stale(self, receipt_handle: str) -> ReceiptHandleError:
        return ReceiptHandleError(
            f"receipt handle {receipt_handle!r} of queue {self.name!r} is stale: the message was deleted, "
            "moved to the dead-letter queue, or received again since (only the newest receipt handle counts); "
            "receive the message again"
        )

    # -- whole-queue operations ---------------------------------------------------

    def redrive(self, max_messages: int | None = None) -> int:
        """Move messages from the dead-letter queue back to the end of their groups here.

        Native: rows move inside the database, keeping their id, group,
        deduplication id and sent time; the receive count starts again from 0
        and the dead-letter attributes are dropped. Messages in flight in the
        dead-letter queue (someone is looking at them) stay there.
        """
        dlq = self._dlq
        if dlq is None:
            raise QueueError(f"queue {self.name!r} has no dead-letter queue to redrive from")
        moved = 0
        while max_messages is None or moved < max_messages:
            want = REDRIVE_CHUNK if max_messages is None else min(REDRIVE_CHUNK, max_messages - moved)
            with self._backend.guard(f"redrive queue {self.name!r} in"), self._backend.transaction() as conn:
                count = self._redrive_chunk(conn, dlq, want)
            if count:
                self._backend.notifier.bump(self._id, dlq._id)
            moved += count
            if count < want:
                break
        return moved

    def _redrive_chunk(self, conn: sqlite3.Connection, dlq: SQLiteQueue, limit: int) -> int:
        now = self._clock.now()
        rows = conn.execute(
            f"SELECT {_M_COLUMNS} FROM queue_groups AS g CROSS JOIN queue_messages AS m ON m.gid = g.gid "
            "WHERE g.queue_id = ?1 AND g.ready_at <= ?2 AND m.visible_at <= ?2 AND m.expires_at > ?2 "
            "ORDER BY m.seq LIMIT ?3",
            (dlq._id, now, limit),
        ).fetchall()
        if not rows:
            return 0
        expires_at = now + self.config.retention_seconds
        entries: list[_NewMessage] = []
        for row in rows:
            attributes = json.loads(row[_ATTRS]) if row[_ATTRS] else {}
            kept = {k: v for k, v in attributes.items() if k not in _DLQ_ONLY_ATTRIBUTES}
            entries.append(
                _NewMessage(
                    row[_GROUP_ID], row[_MESSAGE_ID], row[_DEDUP_ID], row[_BODY],
                    json.dumps(kept) if kept else None, row[_SENT_AT], expires_at, now,
                )
            )  # fmt: skip
        conn.executemany("DELETE FROM queue_messages WHERE seq = ?", [(row[_SEQ],) for row in rows])
        self._append(conn, entries)
        dlq._refresh_groups(conn, {row[_GID] for row in rows})
        return len(rows)

    def attributes(self) -> QueueAttributes:
        """Counts of visible, in-flight and delayed messages, and the oldest one's age.

        Approximate in the way SQS's are: "delayed" counts messages sent within
        the queue's current delay and not yet visible; the oldest age is the
        time since the oldest message entered *this* queue (for a dead-letter
        queue, since it was moved there). Expired messages are never counted.
        """
        with self._backend.guard(f"read attributes of queue {self.name!r} in"), self._backend.read_transaction() as conn:
            now = self._clock.now()
            live, oldest_expiry = conn.execute(
                "SELECT count(*), min(expires_at) FROM queue_messages WHERE queue_id = ? AND expires_at > ?",
                (self._id, now),
            ).fetchone()
            in_flight = conn.execute(_COUNT_IN_FLIGHT, (self._id, now)).fetchone()[0]
            delayed = 0
            if self.config.delay_seconds > 0:
                # only messages sent less than delay_seconds ago can still be delayed
                sent_after = now - self.config.delay_seconds + self.config.retention_seconds
                delayed = conn.execute(
                    "SELECT count(*) FROM queue_messages WHERE queue_id = ? AND expires_at > ? "
                    "AND receive_count = 0 AND visible_at > ?",
                    (self._id, sent_after, now),
                ).fetchone()[0]
        oldest = None
        if live:
            oldest = max(0.0, now - (oldest_expiry - self.config.retention_seconds))
        return QueueAttributes(
            name=self.name,
            visible=max(0, live - in_flight - delayed),
            in_flight=in_flight,
            delayed=delayed,
            oldest_age_seconds=oldest,
        )

    def purge(self) -> None:
        """Delete every message of this queue (not its dead-letter queue, not the deduplication history)."""
        with self._backend.guard(f"purge queue {self.name!r} in"), self._backend.transaction() as conn:
            conn.execute("DELETE FROM queue_messages WHERE queue_id = ?", (self._id,))
            conn.execute("DELETE FROM queue_groups WHERE queue_id = ?", (self._id,))

    # -- housekeeping ---------------------------------------------------------------

    def _sweep_if_due(self, conn: sqlite3.Connection, now: float) -> None:
        """Delete expired messages and deduplication ids, a chunk at a time, at most once a minute."""
        if now < self._next_sweep:
            return
        gone = conn.execute(
            "DELETE FROM queue_messages WHERE seq IN (SELECT seq FROM queue_messages "
            "WHERE queue_id = ? AND expires_at <= ? LIMIT ?) RETURNING gid",
            (self._id, now, SWEEP_CHUNK),
        ).fetchall()
        self._refresh_groups(conn, {gid for (gid,) in gone})
        # a range delete up to the chunk's last expiry walks the index; an IN list would not
        cutoff = conn.execute(
            "SELECT expires_at FROM queue_dedup WHERE expires_at <= ? ORDER BY expires_at LIMIT 1 OFFSET ?",
            (now, SWEEP_CHUNK - 1),
        ).fetchone()
        forgotten = conn.execute(
            "DELETE FROM queue_dedup WHERE expires_at <= ?", (now if cutoff is None else cutoff[0],)
        ).rowcount
        # more left over: sweep again on the next call
        self._next_sweep = now if max(len(gone), forgotten) >= SWEEP_CHUNK else now + SWEEP_INTERVAL_SECONDS
