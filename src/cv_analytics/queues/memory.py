"""An in-process queue backend: SQS semantics in memory, on an injected clock.

The model is dramatiq's ``StubBroker`` (``dramatiq/brokers/stub.py``): a real
broker that lives in the process and keeps its dead letters, so the processor's
and the jobs' suites run fast with nothing on disk. Its semantics are the
embedded SQLite queue's, and the behavioural suite in ``tests/queues`` holds
both (and SQS on moto) to the same tests:

* FIFO queues deliver per message group, in order; a group with a message in
  flight (or a delayed head) delivers nothing more until that message is
  deleted or visible again. A standard queue has no groups and no
  deduplication: any visible message can be delivered.
* Deduplication ids (FIFO) are remembered for the window even after the
  message was deleted, as SQS does.
* A receipt handle names one delivery: a stale one is ignored by ``delete``
  and refused by ``change_visibility``.
* A message received ``max_receive_count`` times moves to the dead-letter
  queue when it would be delivered again, or at once through ``fail`` on its
  last receive, ``fail(permanent=True)`` or ``dead_letter``.
* Retention: expired messages are never delivered, counted nor peeked.
* Long polling waits with ``clock.wait(seconds, event)``: a send in another
  thread sets the waiters' events; on a manual clock the wait moves time on.

Nothing here survives the process: it is for tests and demos, never a default.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from .._ids import random_uuid4
from ..clock import Clock, SystemClock
from ..exceptions import ReceiptHandleError
from .base import (
    _DLQ_ONLY_ATTRIBUTES,
    Message,
    OutgoingMessage,
    Queue,
    QueueAttributes,
    QueueBackend,
    QueueConfig,
    SendOutcome,
    dead_letter_attributes,
)
from .presets import dead_letter_config, dead_letter_queue_name

__all__ = ["MemoryQueue", "MemoryQueueBackend"]


@dataclass
class _Stored:
    seq: int
    message_id: str
    body: str
    group_id: str | None
    dedup_id: str | None
    attributes: dict[str, str]
    sent_at: float
    entered_at: float
    expires_at: float
    visible_at: float
    receive_count: int = 0
    receipt: int | None = None
    failure_reason: str | None = None
    failed_on_receive: int | None = None


@dataclass
class _State:
    """One queue's messages (in arrival order) and its deduplication history."""

    messages: dict[int, _Stored] = field(default_factory=dict)
    dedup: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> (message id, window end)
    waiters: set[threading.Event] = field(default_factory=set)


class MemoryQueueBackend(QueueBackend):
    """Queues in this process's memory; thread-safe. All share one lock and one clock."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.lock = threading.RLock()
        self._queues: dict[str, MemoryQueue] = {}
        self._seq = itertools.count(1)
        self._tokens = itertools.count(1)

    def queue(self, name: str, config: QueueConfig | None = None) -> MemoryQueue:
        """The queue ``name``, created with its dead-letter queue if missing (``config`` updates it)."""
        with self.lock:
            existing = self._queues.get(name)
            if existing is not None:
                if config is not None and existing.config != config:
                    existing.config = config
                    if existing.dead_letter_queue is not None:
                        existing.dead_letter_queue.config = dead_letter_config(config)
                return existing
            config = config or QueueConfig()
            dlq_name = dead_letter_queue_name(name)
            dlq = self._queues.get(dlq_name)
            if dlq is None:
                dlq = self._queues[dlq_name] = MemoryQueue(self, dlq_name, dead_letter_config(config), None)
            queue = self._queues[name] = MemoryQueue(self, name, config, dlq)
            dlq._source = queue
            return queue

    def queue_names(self) -> list[str]:
        with self.lock:
            return sorted(self._queues)

    def next_seq(self) -> int:
        return next(self._seq)

    def next_token(self) -> int:
        return next(self._tokens)


class MemoryQueue(Queue):
    """One queue of a :class:`MemoryQueueBackend`; get it from ``backend.queue(name)``."""

    def __init__(
        self, backend: MemoryQueueBackend, name: str, config: QueueConfig, dead_letter_queue: MemoryQueue | None
    ) -> None:
        super().__init__(name, config)
        self._backend = backend
        self._dlq = dead_letter_queue
        self._source: MemoryQueue | None = None
        self._state = _State()

    def __repr__(self) -> str:
        return f"MemoryQueue({self.name!r})"

    @property
    def dead_letter_queue(self) -> MemoryQueue | None:
        return self._dlq

    # -- send -------------------------------------------------------------------

    def _send_batch(self, messages: list[OutgoingMessage]) -> list[str | SendOutcome]:
        ids: list[str | SendOutcome] = []
        fifo = self.config.fifo
        with self._backend.lock:
            now = self._backend.clock.now()
            dedup = self._state.dedup
            for message in messages:
                if fifo and message.dedup_id is not None:
                    known = dedup.get(message.dedup_id)
                    if known is not None and known[1] > now:
                        # a duplicate inside the window: accepted, not stored
                        ids.append(SendOutcome(0, message_id=known[0], duplicate=True))
                        continue
                message_id = random_uuid4()
                if fifo and message.dedup_id is not None:
                    dedup[message.dedup_id] = (message_id, now + self.config.dedup_window_seconds)
                self._append(
                    _Stored(
                        self._backend.next_seq(), message_id, message.body, message.group_id if fifo else None,
                        message.dedup_id if fifo else None, dict(message.attributes), now, now,
                        now + self.config.retention_seconds, now + self.config.delay_seconds,
                    )
                )  # fmt: skip
                ids.append(message_id)
            self._forget_expired_dedup_ids(now)
        return ids

    def _append(self, stored: _Stored) -> None:
        self._state.messages[stored.seq] = stored
        self._wake()

    def _wake(self) -> None:
        for event in self._state.waiters:
            event.set()

    def _forget_expired_dedup_ids(self, now: float) -> None:
        dedup = self._state.dedup
        if len(dedup) > 1024:  # amortized: only when the history has grown
            for key in [k for k, (_, until) in dedup.items() if until <= now]:
                del dedup[key]

    # -- receive ----------------------------------------------------------------

    def _receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[Message]:
        clock = self._backend.clock
        deadline = clock.monotonic() + wait_seconds
        woken = threading.Event()
        with self._backend.lock:
            self._state.waiters.add(woken)
        try:
            while True:
                woken.clear()
                messages, next_visible = self._claim(max_messages, visibility_timeout)
                if messages or wait_seconds <= 0:
                    return messages
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    return []
                if next_visible is not None:
                    remaining = min(remaining, max(0.0, next_visible - clock.now()))
                clock.wait(remaining, woken)
        finally:
            with self._backend.lock:
                self._state.waiters.discard(woken)

    def _claim(self, max_messages: int, visibility_timeout: float) -> tuple[list[Message], float | None]:
        """Deliver up to ``max_messages``; when there is nothing, also say when something becomes visible."""
        with self._backend.lock:
            now = self._backend.clock.now()
            fifo = self.config.fifo
            # a group with a message in flight delivers nothing until it is deleted or visible
            blocked: set[str | None] = (
                {s.group_id for s in self._state.messages.values() if s.receive_count > 0 and s.visible_at > now}
                if fifo
                else set()
            )
            delivered: list[Message] = []
            poison: list[_Stored] = []
            next_visible: float | None = None
            token = self._backend.next_token()
            for stored in list(self._state.messages.values()):
                if len(delivered) >= max_messages:
                    break
                if stored.expires_at <= now:
                    del self._state.messages[stored.seq]
                    continue
                group = stored.group_id if fifo else None
                if fifo and group in blocked:
                    continue
                if stored.visible_at > now:
                    next_visible = stored.visible_at if next_visible is None else min(next_visible, stored.visible_at)
                    if fifo:
                        blocked.add(group)  # in flight or delayed: the group waits for it
                    continue
                if self._dlq is not None and stored.receive_count >= self.config.max_receive_count:
                    poison.append(stored)
                    continue
                stored.receive_count += 1
                stored.visible_at = now + visibility_timeout
                stored.receipt = token
                delivered.append(self._message(stored, f"mem:{id(self):x}:{stored.seq}:{token}"))
                if fifo and visibility_timeout <= 0:
                    blocked.add(group)  # never hand out a group's next message behind one just delivered
            for stored in poison:
                self._move_to_dead_letter_queue(stored, self._timeout_reason(stored), now)
            return delivered, (None if delivered else next_visible)

    def _message(self, stored: _Stored, receipt_handle: str) -> Message:
        return Message(
            message_id=stored.message_id,
            receipt_handle=receipt_handle,
            body=stored.body,
            group_id=stored.group_id,
            dedup_id=stored.dedup_id,
            receive_count=stored.receive_count,
            sent_at=stored.sent_at,
            attributes=dict(stored.attributes),
        )

    def _timeout_reason(self, stored: _Stored) -> str:
        if stored.failure_reason is not None and stored.failed_on_receive == stored.receive_count:
            return stored.failure_reason
        reason = f"maxReceiveCount {self.config.max_receive_count} exceeded: visibility timeout expired without delete"
        if stored.failure_reason is not None:
            reason += f"; last failure (receive {stored.failed_on_receive}): {stored.failure_reason}"
        return reason[:1024]

    def _peek(self, limit: int) -> list[Message]:
        with self._backend.lock:
            now = self._backend.clock.now()
            live = [s for s in self._state.messages.values() if s.expires_at > now]
            return [self._message(s, "") for s in live[:limit]]

    # -- acknowledge, extend, fail ------------------------------------------------

    def _find(self, receipt_handle: str) -> _Stored | None:
        parts = receipt_handle.split(":")
        if len(parts) != 4 or parts[0] != "mem" or parts[1] != f"{id(self):x}":
            raise ReceiptHandleError(
                f"{receipt_handle!r} is not a receipt handle of queue {self.name!r}: "
                "pass the receipt_handle of a message received from this queue"
            )
        stored = self._state.messages.get(int(parts[2]))
        if stored is None or stored.receipt != int(parts[3]):
            return None
        return stored

    def _delete_batch(self, receipt_handles: list[str]) -> None:
        with self._backend.lock:
            for handle in receipt_handles:
                try:
                    stored = self._find(handle)
                except (ReceiptHandleError, ValueError):
                    continue  # not ours: ignored, as SQS ignores an unknown handle
                if stored is not None:
                    del self._state.messages[stored.seq]
            self._wake()

    def _stale(self, receipt_handle: str) -> ReceiptHandleError:
        return ReceiptHandleError(
            f"receipt handle {receipt_handle!r} of queue {self.name!r} is stale: the message was deleted, "
            "moved to the dead-letter queue, or received again since; receive the message again"
        )

    def _change_visibility(self, receipt_handle: str, timeout_seconds: float, reason: str | None) -> None:
        with self._backend.lock:
            stored = self._find(receipt_handle)
            if stored is None:
                raise self._stale(receipt_handle)
            stored.visible_at = self._backend.clock.now() + timeout_seconds
            if reason is not None:
                stored.failure_reason, stored.failed_on_receive = reason, stored.receive_count
            self._wake()

    def _dead_letter(self, message: Message, reason: str) -> None:
        self.require_dead_letter_queue("dead-letter a message")
        with self._backend.lock:
            stored = self._find(message.receipt_handle)
            if stored is None:
                raise self._stale(message.receipt_handle)
            self._move_to_dead_letter_queue(stored, reason, self._backend.clock.now())

    def _move_to_dead_letter_queue(self, stored: _Stored, reason: str, now: float) -> None:
        dlq = self._dlq
        assert dlq is not None
        del self._state.messages[stored.seq]
        attributes = dead_letter_attributes(stored.attributes, reason, self.name, stored.receive_count, now)
        dlq._append(
            _Stored(
                self._backend.next_seq(), stored.message_id, stored.body, stored.group_id, stored.dedup_id,
                attributes, stored.sent_at, now, now + dlq.config.retention_seconds, now,
            )
        )  # fmt: skip
        self._wake()

    # -- whole-queue operations ---------------------------------------------------

    def redrive(self, max_messages: int | None = None, *, message_ids: Collection[str] | None = None) -> int:
        """Move visible dead letters (all, or those of ``message_ids``) back to the end of their groups
        here, keeping id, group, deduplication id and sent time; receive counts start again from 0."""
        dlq = self.require_dead_letter_queue("redrive")
        with self._backend.lock:
            now = self._backend.clock.now()
            movable = [
                s
                for s in dlq._state.messages.values()
                if s.visible_at <= now and s.expires_at > now and (message_ids is None or s.message_id in message_ids)
            ]
            if max_messages is not None:
                movable = movable[:max_messages]
            for stored in movable:
                del dlq._state.messages[stored.seq]
                kept = {k: v for k, v in stored.attributes.items() if k not in _DLQ_ONLY_ATTRIBUTES}
                self._append(
                    _Stored(
                        self._backend.next_seq(), stored.message_id, stored.body, stored.group_id, stored.dedup_id,
                        kept, stored.sent_at, now, now + self.config.retention_seconds, now,
                    )
                )  # fmt: skip
            return len(movable)

    def attributes(self) -> QueueAttributes:
        """Counts of visible, in-flight and delayed messages, and the oldest one's age in this queue."""
        with self._backend.lock:
            now = self._backend.clock.now()
            live: Sequence[_Stored] = [s for s in self._state.messages.values() if s.expires_at > now]
            in_flight = sum(1 for s in live if s.visible_at > now and s.receive_count > 0)
            delayed = sum(1 for s in live if s.visible_at > now and s.receive_count == 0)
            oldest = max(0.0, now - min(s.entered_at for s in live)) if live else None
            return QueueAttributes(self.name, len(live) - in_flight - delayed, in_flight, delayed, oldest)

    def purge(self) -> None:
        """Delete every message (not the deduplication history)."""
        with self._backend.lock:
            self._state.messages.clear()
