"""Whole-queue operations of the embedded queue: redrive, peek, attributes, purge, housekeeping."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from typing import TYPE_CHECKING

from ..base import _DLQ_ONLY_ATTRIBUTES, Message, QueueAttributes
from .schema import (
    _MESSAGE_COLUMNS,
    _RECEIVE_COUNT,
    SWEEP_INTERVAL_SECONDS,
    SWEEP_CHUNK,
    REDRIVE_CHUNK,
    _SEQ,
    _GID,
    _GROUP_ID,
    _MESSAGE_ID,
    _DEDUP_ID,
    _BODY,
    _ATTRS,
    _SENT_AT,
    _M_COLUMNS,
    _COUNT_IN_FLIGHT,
    _NewMessage,
)

if TYPE_CHECKING:
    from .queue import SQLiteQueue


class SQLiteQueueAdmin:
    """Mixed into :class:`~cv_analytics.queues.sqlite.queue.SQLiteQueue`: what works on the queue as a whole."""

    def _peek(self: SQLiteQueue, limit: int) -> list[Message]:
        """A read: messages in arrival order, untouched (no receive, no lock taken)."""
        with self._backend.guard(f"peek at queue {self.name!r} in"), self._backend.read_transaction() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM queue_messages "
                "WHERE queue_id = ? AND expires_at > ? ORDER BY seq LIMIT ?",
                (self._id, self._clock.now(), limit),
            ).fetchall()
        return [
            Message(
                message_id=row[_MESSAGE_ID],
                receipt_handle="",
                body=row[_BODY],
                group_id=row[_GROUP_ID],
                dedup_id=row[_DEDUP_ID],
                receive_count=row[_RECEIVE_COUNT],
                sent_at=row[_SENT_AT],
                attributes=json.loads(row[_ATTRS]) if row[_ATTRS] else {},
            )
            for row in rows
        ]

    # -- whole-queue operations ---------------------------------------------------

    def redrive(self, max_messages: int | None = None, *, message_ids: Collection[str] | None = None) -> int:
        """Move messages (all, or those of ``message_ids``) from the dead-letter queue back to the end of their groups here.

        Native: rows move inside the database, keeping their id, group,
        deduplication id and sent time; the receive count starts again from 0
        and the dead-letter attributes are dropped. Messages in flight in the
        dead-letter queue (someone is looking at them) stay there.
        """
        dlq = self.require_dead_letter_queue("redrive")
        moved = 0
        while max_messages is None or moved < max_messages:
            want = REDRIVE_CHUNK if max_messages is None else min(REDRIVE_CHUNK, max_messages - moved)
            with self._backend.guard(f"redrive queue {self.name!r} in"), self._backend.transaction() as conn:
                count = self._redrive_chunk(conn, dlq, want, message_ids)
            if count:
                self._backend.notifier.bump(self._id, dlq._id)
            moved += count
            if count < want:
                break
        return moved

    def _redrive_chunk(
        self, conn: sqlite3.Connection, dlq: SQLiteQueue, limit: int, message_ids: Collection[str] | None
    ) -> int:
        now = self._clock.now()
        chosen = "" if message_ids is None else "AND m.message_id IN (SELECT value FROM json_each(?4)) "
        rows = conn.execute(
            f"SELECT {_M_COLUMNS} FROM queue_groups AS g CROSS JOIN queue_messages AS m ON m.gid = g.gid "
            "WHERE g.queue_id = ?1 AND g.ready_at <= ?2 AND m.visible_at <= ?2 AND m.expires_at > ?2 "
            f"{chosen}ORDER BY m.seq LIMIT ?3",
            (dlq._id, now, limit) + (() if message_ids is None else (json.dumps(list(message_ids)),)),
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
