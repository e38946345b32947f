"""One queue of the embedded backend: send, receive, acknowledge, fail.

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
* Long polling. A receiver waiting for messages waits on the backend's clock
  (``Clock.wait``) with an event that senders, deletes and visibility changes
  in its own process set (see ``notifier``); it notices other processes'
  commits by reading ``PRAGMA data_version`` every ``poll_interval`` seconds
  (it changes when another connection commits; reading it takes no lock), and
  wakes by itself when an in-flight or delayed message becomes visible. On a
  :class:`~cv_analytics.clock.ManualClock` the wait moves time on, so tests
  never block for the length of a long poll.
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

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..._ids import random_uuid4
from ...exceptions import QueueUnavailableError
from ..base import (
    MAX_BATCH_SIZE,
    UNAVAILABLE_ERROR_CODE,
    Message,
    OutgoingMessage,
    Queue,
    QueueConfig,
    SendOutcome,
    dead_letter_attributes,
)
from .acks import SQLiteQueueAcks
from .admin import SQLiteQueueAdmin
from .schema import (
    _SEQ,
    _GID,
    _GROUP_ID,
    _MESSAGE_ID,
    _DEDUP_ID,
    _BODY,
    _ATTRS,
    _SENT_AT,
    _EXPIRES_AT,
    _RECEIVE_COUNT,
    _FAILURE_REASON,
    _FAILED_ON_RECEIVE,
    _CLAIM,
    _NEXT_IDS,
    _INSERT_MESSAGE,
    _INSERT_GROUP,
    _INSERT_DEDUP,
    _DROP_GROUPS_IF_EMPTY,
    _REFRESH_GROUP,
    _FIRST_READY,
    _NewMessage,
    _new_receipt_token,
    _IN_CHUNK,
    SEND_CHUNK,
    _marks,
    _insert_rows,
    _select_in,
)

if TYPE_CHECKING:
    from .backend import SQLiteQueueBackend

class SQLiteQueue(SQLiteQueueAcks, SQLiteQueueAdmin, Queue):
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
        if wait_seconds <= 0:
            return self._claim(max_messages, visibility_timeout)[0]
        clock = self._clock
        deadline = clock.monotonic() + wait_seconds
        with self._backend.notifier.waiting(self._id) as changed:
            while True:
                changed.clear()
                data_version = self._data_version()
                messages, next_ready = self._claim(max_messages, visibility_timeout)
                if messages:
                    return messages
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    return []
                if next_ready is not None:
                    remaining = min(remaining, max(0.0, next_ready - clock.now()))
                self._wait(changed, data_version, remaining)

    def _wait(self, changed: threading.Event, data_version: int, seconds: float) -> None:
        """Wait ``seconds`` on the clock, or until this process changes the queue (``changed``)
        or another one commits to the file (``PRAGMA data_version`` moves), polled at
        ``min_poll_interval`` seconds, then less and less often, down to every ``poll_interval``."""
        clock, poll, slowest = self._clock, self._backend.min_poll_interval, self._backend.poll_interval
        until = clock.monotonic() + seconds
        while (left := until - clock.monotonic()) > 0:
            if clock.wait(min(poll, left), changed) or self._data_version() != data_version:
                return
            poll = min(poll * 2, slowest)

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
            attributes = dead_letter_attributes(
                json.loads(row[_ATTRS]) if row[_ATTRS] else {}, reason, self.name, row[_RECEIVE_COUNT], now
            )
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

    def receive_many(
        self, max_messages: int, *, wait_seconds: float | None = None, visibility_timeout: float | None = None
    ) -> list[Message]:
        """Up to ``max_messages`` claimed in one transaction (see :meth:`Queue.receive_many`)."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        wait, timeout = self._receive_arguments(wait_seconds, visibility_timeout)
        return self._receive(max_messages, wait, timeout)
