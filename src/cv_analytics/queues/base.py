"""The queue seam: SQS FIFO semantics, shared by every backend.

The public methods here validate input and keep the semantics that do not depend
on where messages live (batch limits, message size, content-based deduplication
ids, the poison-message rule); a backend implements the underscored primitives.
The shape follows AWS Powertools' idempotency persistence layer: the base does
the checking once, each backend does the storage.
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..exceptions import QueueError, QueueUnavailableError

#: SQS limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html).
MAX_BATCH_SIZE = 10
MAX_WAIT_SECONDS = 20.0
MAX_MESSAGE_BYTES = 256 * 1024
MAX_VISIBILITY_TIMEOUT = 12 * 3600.0
#: SQS caps a whole SendMessageBatch request at 256 KiB, as it does each message.
MAX_BATCH_BYTES = MAX_MESSAGE_BYTES

#: ``error_code`` of a :meth:`Queue.send_many` entry the queue could not be
#: reached for (not the entry's fault: retry it).
UNAVAILABLE_ERROR_CODE = "QueueUnavailable"

#: Message attribute names a dead-lettered message carries.
FAILURE_REASON_ATTRIBUTE = "failureReason"
SOURCE_QUEUE_ATTRIBUTE = "sourceQueue"
RECEIVE_COUNT_ATTRIBUTE = "receiveCount"
#: When it entered the dead-letter queue (seconds since the epoch, as text).
DEAD_LETTERED_AT_ATTRIBUTE = "deadLetteredAt"


@dataclass(frozen=True)
class QueueConfig:
    """How a queue behaves. ``fifo`` False is an SQS standard queue: at-least-once,
    no message groups, no deduplication. The named queues' settings are in
    :mod:`cv_analytics.queues.presets`."""

    fifo: bool = True
    visibility_timeout: float = 30.0
    max_receive_count: int = 3
    retention_seconds: float = 4 * 24 * 3600.0
    dedup_window_seconds: float = 300.0
    content_based_dedup: bool = False
    max_message_bytes: int = MAX_MESSAGE_BYTES
    delay_seconds: float = 0.0
    #: How long :meth:`Queue.receive` waits by default (SQS's ReceiveMessageWaitTimeSeconds).
    receive_wait_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")
        if not 0 <= self.visibility_timeout <= MAX_VISIBILITY_TIMEOUT:
            raise ValueError("visibility_timeout must be between 0 and 12 hours")
        if not 0 <= self.receive_wait_seconds <= MAX_WAIT_SECONDS:
            raise ValueError(f"receive_wait_seconds must be between 0 and {MAX_WAIT_SECONDS:g}")


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to send. ``group_id`` is required on FIFO queues; ``dedup_id``
    too unless the queue has content-based deduplication."""

    body: str
    group_id: str | None = None
    dedup_id: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendOutcome:
    """One entry of a batch send: a message id, or an error code and reason."""

    index: int
    message_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    #: True when a retry cannot succeed (too large, malformed): do not retry it.
    sender_fault: bool = False
    #: True when a FIFO queue accepted it as a duplicate inside the deduplication
    #: window and did not store it again (the embedded queue tells; SQS does not).
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.message_id is not None


@dataclass(frozen=True)
class Message:
    """A received message. ``receipt_handle`` is valid until it becomes visible again."""

    message_id: str
    receipt_handle: str
    body: str
    group_id: str | None
    dedup_id: str | None
    receive_count: int
    sent_at: float
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueAttributes:
    name: str
    visible: int
    in_flight: int
    delayed: int
    #: Seconds since the oldest message still in the queue was sent; None when empty.
    oldest_age_seconds: float | None


def message_size(message: OutgoingMessage) -> int:
    """Bytes a message counts against the size limits: its UTF-8 body and its attributes."""
    body = message.body
    # isascii() is a flag lookup: most bodies need no encoding to be measured
    size = len(body) if body.isascii() else len(body.encode())
    if message.attributes:
        size += sum(len(k) + len(v) for k, v in message.attributes.items())
    return size


def unavailable_outcomes(count: int, exc: Exception) -> list[SendOutcome]:
    """``count`` outcomes (indexes from 0) of entries not sent because the queue could not be reached."""
    return [SendOutcome(i, error_code=UNAVAILABLE_ERROR_CODE, error=str(exc)) for i in range(count)]


def request_batches(
    messages: Sequence[OutgoingMessage], size_of: Callable[[OutgoingMessage], int] = message_size
) -> Iterator[tuple[int, list[OutgoingMessage]]]:
    """``(index of the first, batch)``: runs of at most MAX_BATCH_SIZE messages and
    MAX_BATCH_BYTES as ``size_of`` measures them (a message over that alone makes a
    batch, for the send to refuse). The one rule for cutting sends into requests."""
    start: int = 0
    batch: list[OutgoingMessage] = []
    size = 0
    for index, message in enumerate(messages):
        length = size_of(message)
        if batch and (len(batch) == MAX_BATCH_SIZE or size + length > MAX_BATCH_BYTES):
            yield start, batch
            start, batch, size = index, [], 0
        batch.append(message)
        size += length
    if batch:
        yield start, batch


def content_dedup_id(body: str) -> str:
    """SQS's content-based deduplication id: the SHA-256 of the body."""
    return hashlib.sha256(body.encode()).hexdigest()


class Queue(ABC):
    """A queue with SQS (FIFO) semantics and its dead-letter queue.

    At-least-once delivery: a received message comes back after its visibility
    timeout unless deleted; after ``max_receive_count`` receives it moves to the
    dead-letter queue with the last failure reason.
    """

    def __init__(self, name: str, config: QueueConfig) -> None:
        self.name = name
        self.config = config

    # -- public API ---------------------------------------------------------

    def send(
        self,
        body: str,
        *,
        group_id: str | None = None,
        dedup_id: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> str:
        """Send one message and return its id; raises on failure."""
        (outcome,) = self.send_batch(
            [OutgoingMessage(body, group_id, dedup_id, dict(attributes or {}))]
        )
        if not outcome.ok:
            if outcome.error_code == "MessageTooLong":
                from ..exceptions import MessageTooLargeError

                raise MessageTooLargeError(outcome.error or "message too large")
            raise QueueError(outcome.error or "send failed")
        assert outcome.message_id is not None
        return outcome.message_id

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Send up to 10 messages. Entries that can never be sent (too large,
        missing group id) fail alone with ``sender_fault``; the rest go in.

        Raises :class:`~cv_analytics.exceptions.QueueUnavailableError` when the
        queue cannot be reached: nothing of the batch is known to be sent.
        """
        if not messages:
            return []
        if len(messages) > MAX_BATCH_SIZE:
            raise ValueError(f"a batch holds at most {MAX_BATCH_SIZE} messages, got {len(messages)}")
        outcomes, accepted = self._check_batch(messages)
        if accepted:
            self._store_accepted(outcomes, accepted)
        return [outcomes[i] for i in range(len(messages))]

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Send any number of messages, in order, in as few round trips as the
        backend allows: batches of 10 and at most 256 KiB through
        :meth:`send_batch` here (SQS's limits per request); the embedded queue
        overrides it to store them in one transaction.

        Outcomes per entry, as :meth:`send_batch`'s. It does not raise when the
        queue cannot be reached: the entries of the batch that failed so, and of
        every batch after it (not attempted, so that nothing overtakes them in
        their group), come back with error code :data:`UNAVAILABLE_ERROR_CODE`
        and ``sender_fault`` False, to be retried; what went before them is sent.
        Other errors propagate as from :meth:`send_batch`.
        """
        outcomes: list[SendOutcome] = []
        failure: QueueUnavailableError | None = None
        for start, chunk in request_batches(messages):
            if failure is None:
                try:
                    results = self.send_batch(chunk)
                except QueueUnavailableError as exc:
                    failure = exc
            if failure is not None:
                results = unavailable_outcomes(len(chunk), failure)
            outcomes.extend(replace(o, index=start + o.index) for o in results)
        return outcomes

    def receive(
        self,
        max_messages: int = MAX_BATCH_SIZE,
        *,
        wait_seconds: float | None = None,
        visibility_timeout: float | None = None,
    ) -> list[Message]:
        """Receive up to ``max_messages`` (1–10), waiting up to ``wait_seconds``
        (0–20; by default the queue's ``receive_wait_seconds``) for the first one.
        FIFO: per group, in order; a group with a message in flight yields nothing
        until that message is deleted or visible. A standard queue has no groups."""
        if not 1 <= max_messages <= MAX_BATCH_SIZE:
            raise ValueError(f"max_messages must be 1–{MAX_BATCH_SIZE}, got {max_messages}")
        wait, timeout = self._receive_arguments(wait_seconds, visibility_timeout)
        return self._receive(max_messages, wait, timeout)

    def _receive_arguments(self, wait_seconds: float | None, visibility_timeout: float | None) -> tuple[float, float]:
        wait = self.config.receive_wait_seconds if wait_seconds is None else wait_seconds
        if not 0 <= wait <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be 0–{MAX_WAIT_SECONDS:g}, got {wait}")
        timeout = self.config.visibility_timeout if visibility_timeout is None else visibility_timeout
        if not 0 <= timeout <= MAX_VISIBILITY_TIMEOUT:
            raise ValueError("visibility_timeout must be between 0 and 12 hours")
        return wait, timeout

    def peek(self, limit: int = MAX_BATCH_SIZE) -> list[Message]:
        """Up to ``limit`` messages in queue order, left in place: nothing is
        received, no receive count moves, no group is blocked.

        For listing (a dead-letter queue above all). The messages' receipt
        handles are empty: a peeked message cannot be deleted nor failed.
        ``receive_count`` is how many times the message was received here.
        Where a backend cannot read without receiving (SQS), it says what it
        does instead.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        return self._peek(limit)

    def receive_many(
        self,
        max_messages: int,
        *,
        wait_seconds: float | None = None,
        visibility_timeout: float | None = None,
    ) -> list[Message]:
        """Like :meth:`receive`, for any number of messages, in as few round trips
        as the backend allows (SQS: ten per request, waiting only for the first
        ten; the embedded queue: one transaction). Same FIFO rules."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        messages = self.receive(
            min(MAX_BATCH_SIZE, max_messages), wait_seconds=wait_seconds, visibility_timeout=visibility_timeout
        )
        while len(messages) < max_messages and messages and len(messages) % MAX_BATCH_SIZE == 0:
            more = self.receive(min(MAX_BATCH_SIZE, max_messages - len(messages)), visibility_timeout=visibility_timeout)
            if not more:
                break
            messages.extend(more)
        return messages

    def delete_batch(self, receipt_handles: Sequence[str]) -> None:
        """Delete received messages (acknowledge them). Unknown handles are ignored."""
        for start in range(0, len(receipt_handles), MAX_BATCH_SIZE):
            self._delete_batch(list(receipt_handles[start : start + MAX_BATCH_SIZE]))

    def delete(self, receipt_handle: str) -> None:
        self.delete_batch([receipt_handle])

    def change_visibility(self, receipt_handle: str, timeout_seconds: float) -> None:
        """Make an in-flight message visible again after ``timeout_seconds`` (0 = now)."""
        if not 0 <= timeout_seconds <= MAX_VISIBILITY_TIMEOUT:
            raise ValueError("timeout_seconds must be between 0 and 12 hours")
        self._change_visibility(receipt_handle, timeout_seconds, None)

    def fail(self, message: Message, reason: str, *, retry_delay: float = 0.0, permanent: bool = False) -> bool:
        """Record that handling ``message`` failed, and why.

        A transient failure: before its last receive the message becomes
        visible again after ``retry_delay``; on its last (``receive_count >=
        max_receive_count``) it moves to the dead-letter queue now, carrying
        ``reason`` as the ``failureReason`` attribute. A ``permanent`` failure
        (it can never succeed: malformed, invalid) moves it there at once,
        whatever its receive count, so the messages behind it in its group do
        not burn their receives. Returns True when it was dead-lettered.
        A dead-letter queue has none of its own: there the message just becomes
        visible again. Raises :class:`~cv_analytics.exceptions.ReceiptHandleError`
        when the message was received again since (its handle is stale).
        """
        reason = reason[:1024]
        if self.dead_letter_queue is not None and (permanent or message.receive_count >= self.config.max_receive_count):
            self._dead_letter(message, reason)
            return True
        self._change_visibility(message.receipt_handle, retry_delay, reason)
        return False

    def dead_letter(self, message: Message, reason: str) -> None:
        """Move a received message to the dead-letter queue now, whatever its
        receive count, keeping ``reason``, its receive count and this queue's
        name as attributes. Raises :class:`~cv_analytics.exceptions.QueueError`
        on a queue without a dead-letter queue."""
        self.require_dead_letter_queue("dead-letter a message")
        self._dead_letter(message, reason[:1024])

    def require_dead_letter_queue(self, action: str) -> Queue:
        """This queue's dead-letter queue; :class:`QueueError` saying so when it has none."""
        dlq = self.dead_letter_queue
        if dlq is None:
            raise QueueError(
                f"cannot {action}: queue {self.name!r} has no dead-letter queue "
                "(it is one itself, or on SQS it has no redrive policy)"
            )
        return dlq

    @property
    @abstractmethod
    def dead_letter_queue(self) -> Queue | None:
        """The queue that poison messages move to (None for a DLQ itself)."""

    def redrive(self, max_messages: int | None = None, *, message_ids: Collection[str] | None = None) -> int:
        """Move messages from the dead-letter queue back here; returns how many.

        ``message_ids``: only those (the others are looked at and left in the
        dead-letter queue, visible again at once). The generic way (receive,
        send, delete), which works on any backend; a backend may do it natively.
        """
        return self._move_back(max_messages, None if message_ids is None else set(message_ids), {})

    def redrive_edited(self, bodies: Mapping[str, str]) -> int:
        """Move the dead letters named by ``bodies`` (message id → corrected body) back here, each with its new body.

        For a letter that failed for what it contains (a producer's bug fixed
        since): it goes back in its group with a new message id. The generic
        receive–send–delete on every backend; a letter whose new body the queue
        refuses stays in the dead-letter queue, visible again at once. Returns how many moved.
        """
        if not bodies:
            return 0
        return self._move_back(None, set(bodies), dict(bodies))

    def _move_back(self, max_messages: int | None, wanted: set[str] | None, bodies: Mapping[str, str]) -> int:
        """Receive from the dead-letter queue, send here (with the body of ``bodies`` where it names one), delete."""
        dlq = self.require_dead_letter_queue("redrive")
        moved = 0
        passed_over: list[Message] = []
        try:
            while (max_messages is None or moved < max_messages) and (wanted is None or wanted):
                want = MAX_BATCH_SIZE if max_messages is None or wanted is not None else min(MAX_BATCH_SIZE, max_messages - moved)
                batch = dlq.receive(want, visibility_timeout=60.0)
                if not batch:
                    break
                if wanted is not None:
                    passed_over.extend(m for m in batch if m.message_id not in wanted)
                    batch = [m for m in batch if m.message_id in wanted][: None if max_messages is None else max_messages - moved]
                    wanted.difference_update(m.message_id for m in batch)
                    if not batch:
                        continue
                outcomes = self.send_batch(
                    [
                        OutgoingMessage(
                            bodies.get(m.message_id, m.body),
                            m.group_id,
                            # a fresh id: the original is still inside the dedup window when redriven quickly
                            f"{m.dedup_id or content_dedup_id(m.body)}:redrive:{m.message_id}"[:128],
                            {k: v for k, v in m.attributes.items() if k not in _DLQ_ONLY_ATTRIBUTES},
                        )
                        for m in batch
                    ]
                )
                dlq.delete_batch([m.receipt_handle for m, o in zip(batch, outcomes, strict=True) if o.ok])
                passed_over.extend(m for m, o in zip(batch, outcomes, strict=True) if not o.ok)
                moved += sum(o.ok for o in outcomes)
        finally:
            for message in passed_over:  # looked at, not moved: back in the dead-letter queue at once
                with contextlib.suppress(QueueError):
                    dlq.change_visibility(message.receipt_handle, 0)
        return moved

    @abstractmethod
    def attributes(self) -> QueueAttributes:
        """Counts of visible, in-flight and delayed messages, and the oldest one's age."""

    @abstractmethod
    def purge(self) -> None:
        """Delete every message (not the deduplication history)."""

    # -- backend primitives ---------------------------------------------------

    @abstractmethod
    def _send_batch(self, messages: list[OutgoingMessage]) -> Sequence[str | SendOutcome]:
        """Store already-checked messages; return their ids in order.

        An entry the backend refuses on its own (SQS's per-entry failures) is a
        :class:`SendOutcome` with its error instead of an id; its ``index`` is
        set by the caller.

        A FIFO duplicate inside the dedup window is accepted and not stored again,
        returning the first copy's id, as SQS does."""

    @abstractmethod
    def _receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[Message]: ...

    @abstractmethod
    def _delete_batch(self, receipt_handles: list[str]) -> None: ...

    @abstractmethod
    def _change_visibility(self, receipt_handle: str, timeout_seconds: float, reason: str | None) -> None: ...

    @abstractmethod
    def _dead_letter(self, message: Message, reason: str) -> None:
        """Move a received message to the dead-letter queue with ``reason``."""

    @abstractmethod
    def _peek(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages in queue order, without receiving them."""

    # -- shared checks --------------------------------------------------------

    def _check_batch(
        self, messages: Sequence[OutgoingMessage]
    ) -> tuple[dict[int, SendOutcome], list[tuple[int, OutgoingMessage]]]:
        """Outcomes of the entries that can never be sent, and the rest (with
        content-based deduplication ids filled in), by their index in ``messages``."""
        outcomes: dict[int, SendOutcome] = {}
        accepted: list[tuple[int, OutgoingMessage]] = []
        fill_dedup = self.config.fifo
        for index, message in enumerate(messages):
            problem = self._check_outgoing(message)
            if problem:
                outcomes[index] = SendOutcome(index, error_code=problem[0], error=problem[1], sender_fault=True)
                continue
            if fill_dedup and message.dedup_id is None:
                message = OutgoingMessage(
                    message.body, message.group_id, content_dedup_id(message.body), message.attributes
                )
            accepted.append((index, message))
        return outcomes, accepted

    def _store_accepted(
        self, outcomes: dict[int, SendOutcome], accepted: list[tuple[int, OutgoingMessage]]
    ) -> None:
        """Hand checked messages to the backend and record each one's outcome."""
        results = self._send_batch([m for _, m in accepted])
        for (index, _), result in zip(accepted, results, strict=True):
            if isinstance(result, SendOutcome):  # the backend refused this entry alone
                outcomes[index] = replace(result, index=index)
            else:
                outcomes[index] = SendOutcome(index, message_id=result)


    def _check_outgoing(self, message: OutgoingMessage) -> tuple[str, str] | None:
        size = message_size(message)
        if size > self.config.max_message_bytes:
            return (
                "MessageTooLong",
                f"message is {size} bytes, over the {self.config.max_message_bytes}-byte limit of queue {self.name!r}",
            )
        if self.config.fifo and not message.group_id:
            return ("MissingParameter", "a FIFO queue needs a message group id on every message")
        if self.config.fifo and message.dedup_id is None and not self.config.content_based_dedup:
            return (
                "InvalidParameterValue",
                "give a deduplication id or enable content-based deduplication on the queue",
            )
        if message.dedup_id is not None and not 1 <= len(message.dedup_id) <= 128:
            return ("InvalidParameterValue", "a deduplication id is 1–128 characters")
        return None


_DLQ_ONLY_ATTRIBUTES = frozenset(
    {FAILURE_REASON_ATTRIBUTE, SOURCE_QUEUE_ATTRIBUTE, RECEIVE_COUNT_ATTRIBUTE, DEAD_LETTERED_AT_ATTRIBUTE}
)


def dead_letter_attributes(attributes: Mapping[str, str], reason: str, source: str, receive_count: int, now: float) -> dict[str, str]:
    """A message's attributes once dead-lettered: its own, plus why, from where, after how many receives, and when."""
    return {
        **attributes,
        FAILURE_REASON_ATTRIBUTE: reason,
        SOURCE_QUEUE_ATTRIBUTE: source,
        RECEIVE_COUNT_ATTRIBUTE: str(receive_count),
        DEAD_LETTERED_AT_ATTRIBUTE: f"{now:.3f}",
    }


class QueueBackend(ABC):
    """Where queues live: opens named queues, creating them (and their DLQ) if needed."""

    @abstractmethod
    def queue(self, name: str, config: QueueConfig | None = None) -> Queue: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
