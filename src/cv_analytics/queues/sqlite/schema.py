"""The embedded queue's schema: tables, migrations, the SQL of its operations, and row helpers.

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

"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ..base import MAX_BATCH_SIZE, QueueConfig
from ..presets import dead_letter_queue_name

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
