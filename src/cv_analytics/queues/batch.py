"""One batch engine for every queue consumer: messages in, each one's outcome as data, then what to do.

A :class:`RecordHandler` says what a message means (the analytics processor,
the jobs worker, the jobs result processor); this module knows only the queue
rules, once:

1. **Decode** each message alone (``handler.decode``). Whatever it raises,
   ``RecursionError`` included, is that message's *permanent* failure: it can
   never succeed, so it goes to the dead-letter queue with its reason on its
   first receive, and the rest of its group goes on in the same batch.
2. **Handle** the decoded records in one call (``handler.handle``), so a
   handler can record a whole batch in one store transaction. An error the
   handler names transient (its dependency is down, throttling) makes every
   record of the call a *transient* failure: retried as is, not the messages'
   fault. Any other exception is isolated: the records are handled one by one,
   and the message that trips it alone fails (retried, and dead-lettered by the
   queue on its last receive with the error as reason).
3. **The FIFO rule** (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html):
   on a FIFO queue, once a message of a group is to be retried, the later
   messages of that group in the batch are *skipped* (not attempted) so the
   group's order holds on retry. A permanent failure does not hold its group:
   it leaves the queue at once. Standard queues have no such rule.
4. **Settle** (:meth:`BatchEngine.settle`): dead-letter the permanent
   failures, make the retried messages visible again (skipped ones at once, the
   message's own failures through :meth:`~cv_analytics.queues.base.Queue.fail`
   (after the handler's ``retry_delay``, or now),
   an outage's after a delay or at the visibility timeout), delete what
   succeeded (the embedded consumer; on Lambda the event source mapping deletes),
   and build Lambda's ``batchItemFailures``.

Why our own engine and not AWS Powertools' batch utilities
(``aws_lambda_powertools.utilities.batch``, whose ``BasePartialProcessor`` and
``SqsFifoPartialProcessor`` shaped this one): Powertools handles one record at a
time, knows only Lambda's event records, and treats every failure alike (no
permanent/transient classification, no dead-lettering on the first receive).
The embedded worker must not depend on Lambda's event shape or library, and the
analytics handler needs a whole batch per store transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from ..exceptions import FatalError, QueueError, ReceiptHandleError
from .base import Message, Queue

log = logging.getLogger(__name__)

RecordT = TypeVar("RecordT")

#: A failure reason is cut to this many characters (SQS attribute values are small; a reason costs at most this).
MAX_REASON_CHARS = 1024


class Status(str, Enum):
    """What became of one message of a batch."""

    SUCCEEDED = "succeeded"  # handled (or a harmless duplicate): delete it
    PERMANENT = "permanent"  # can never succeed: dead-letter it now, with its reason
    TRANSIENT = "transient"  # may succeed later: retry it
    SKIPPED = "skipped"  # not attempted: an earlier message of its FIFO group is retried
    DEAD_LETTERED = "dead_lettered"  # settled: moved to the dead-letter queue, gone from this queue


# -- what a handler reports -------------------------------------------------------------


@dataclass(frozen=True)
class Succeeded:
    """The record was handled; ``detail`` is the handler's own account (e.g. a store outcome)."""

    detail: Any = None


@dataclass(frozen=True)
class PermanentFailure:
    """The record can never be handled (invalid, unknown, refused for good)."""

    reason: str


@dataclass(frozen=True)
class TransientFailure:
    """The record may be handled later. ``outage``: a dependency is down (not the message's fault).
    ``retry_delay``: seconds before the message comes back (the handler's own backoff; now when None)."""

    reason: str
    outage: bool = False
    retry_delay: float | None = None


Outcome = Succeeded | PermanentFailure | TransientFailure


class PermanentError(Exception):
    """Raised by a handler's ``decode`` or ``handle`` for a message that can never succeed."""


class RecordHandler(Protocol[RecordT]):
    """What a message means, for :class:`BatchEngine`.

    ``decode`` turns one message into a record, raising for a message that can
    never be handled (anything it raises is that message's permanent failure).
    ``handle`` takes the decoded records of a batch, in queue order, and
    returns one outcome per record, or raises one of ``transient_errors`` when
    a dependency is down (every record of the call is then retried). A handler
    that reports a :class:`TransientFailure` for one record must not have
    handled the later records of that FIFO group in the same call.
    """

    #: Exceptions meaning "a dependency is down": retry, pause, check health.
    transient_errors: tuple[type[BaseException], ...]

    def decode(self, message: Message) -> RecordT: ...

    def handle(self, records: Sequence[RecordT]) -> Sequence[Outcome]: ...


# -- what the engine reports ------------------------------------------------------------


@dataclass(frozen=True)
class UnreadableRecord:
    """A delivery that cannot be made into a :class:`Message` (a Lambda record no SQS would send).

    It cannot be acted on (no trustworthy receipt handle): it is retried as it is, and holds its group.
    """

    message_id: str
    group_id: str | None
    reason: str


@dataclass(frozen=True)
class ItemResult:
    """One message's outcome. ``outage``: a transient failure because a dependency is down."""

    message_id: str
    group_id: str | None
    status: Status
    reason: str | None = None
    message: Message | None = None
    outage: bool = False
    detail: Any = None
    #: a transient failure's delay before it comes back (see :class:`TransientFailure`)
    retry_delay: float | None = None

    @property
    def retried(self) -> bool:
        return self.status in (Status.TRANSIENT, Status.SKIPPED, Status.PERMANENT)


@dataclass
class BatchResult:
    """The outcomes of a batch, in its order, and what follows from them."""

    items: list[ItemResult] = field(default_factory=list)

    def with_status(self, *statuses: Status) -> list[ItemResult]:
        return [i for i in self.items if i.status in statuses]

    @property
    def to_delete(self) -> list[Message]:
        return [i.message for i in self.items if i.status is Status.SUCCEEDED and i.message is not None]

    @property
    def to_dead_letter(self) -> list[ItemResult]:
        return self.with_status(Status.PERMANENT)

    @property
    def to_retry(self) -> list[ItemResult]:
        """Messages that stay in the queue to come back (after :meth:`BatchEngine.settle`, the ones
        whose dead-lettering failed too)."""
        return self.with_status(Status.TRANSIENT, Status.SKIPPED, Status.PERMANENT)

    @property
    def outage(self) -> bool:
        """True when a dependency was down: the consumer should pause until it answers."""
        return any(i.outage for i in self.items)

    def lambda_response(self) -> dict[str, list[dict[str, str]]]:
        """The partial batch response Lambda's SQS event source mapping reads: what it must not delete."""
        return {"batchItemFailures": [{"itemIdentifier": i.message_id} for i in self.to_retry]}

    def details(self) -> list[Any]:
        return [i.detail for i in self.items if i.status is Status.SUCCEEDED]


# -- the engine --------------------------------------------------------------------------


class BatchEngine(Generic[RecordT]):
    """Runs a :class:`RecordHandler` over batches: outcomes as data, then :meth:`settle`."""

    def __init__(self, handler: RecordHandler[RecordT]) -> None:
        self.handler = handler

    def process(
        self,
        messages: Sequence[Message | UnreadableRecord],
        *,
        fifo: bool = True,
        max_receive_count: int | None = None,
    ) -> BatchResult:
        """Each message's outcome; touches no queue (see :meth:`settle`).

        ``fifo``: apply the FIFO rule (the queue's ``config.fifo``).
        ``max_receive_count``: the queue's; a message failing on its last
        receive is dead-lettered now rather than left to the queue, and so does
        not hold its group: the followers skipped behind it on every earlier
        receive get their attempt in this batch, instead of being moved to the
        dead-letter queue unattempted on their next receive.
        """
        results: dict[int, ItemResult] = {}
        decoded: list[tuple[int, RecordT]] = []
        held: set[str | None] = set()  # groups already retried while decoding: their later messages wait
        for index, message in enumerate(messages):
            if isinstance(message, UnreadableRecord):
                results[index] = ItemResult(message.message_id, message.group_id, Status.TRANSIENT, message.reason)
            elif fifo and message.group_id in held:
                results[index] = _result(message, Status.SKIPPED, _held_reason(message.group_id))
                continue
            else:
                try:
                    decoded.append((index, self.handler.decode(message)))
                    continue
                except self.handler.transient_errors as exc:
                    results[index] = _transient(message, str(exc), outage=True)
                except Exception as exc:  # noqa: BLE001 - whatever one body does, it costs at most itself
                    results[index] = _result(message, Status.PERMANENT, _reason_of(exc))
            if results[index].status is Status.TRANSIENT:
                held.add(message.group_id)
        if decoded:
            self._handle(messages, decoded, results, max_receive_count)
        ordered = [results[i] for i in range(len(messages))]
        return BatchResult(_apply_fifo_rule(ordered) if fifo else ordered)

    def _handle(
        self,
        messages: Sequence[Message | UnreadableRecord],
        decoded: list[tuple[int, RecordT]],
        results: dict[int, ItemResult],
        max_receive_count: int | None,
    ) -> None:
        try:
            outcomes = self.handler.handle([record for _, record in decoded])
            if len(outcomes) != len(decoded):
                raise RuntimeError(f"handler returned {len(outcomes)} outcomes for {len(decoded)} records")
        except self.handler.transient_errors as exc:
            log.warning("dependency unavailable, %d message(s) will be retried: %s", len(decoded), exc)
            for index, _ in decoded:
                results[index] = _transient(_message(messages[index]), str(exc), outage=True)
            return
        except FatalError:  # a damaged database: no message's fault, and no retry helps
            raise
        except Exception:  # a bug or data no one foresaw: isolate the message that trips it
            log.exception("handling a batch of %d failed; handling its messages one by one", len(decoded))
            self._handle_one_by_one(messages, decoded, results, max_receive_count)
            return
        for (index, _), outcome in zip(decoded, outcomes, strict=True):
            results[index] = _on_last_receive(_from_outcome(_message(messages[index]), outcome), max_receive_count)

    def _handle_one_by_one(
        self,
        messages: Sequence[Message | UnreadableRecord],
        decoded: list[tuple[int, RecordT]],
        results: dict[int, ItemResult],
        max_receive_count: int | None,
    ) -> None:
        held: set[str | None] = set()  # groups with a message to retry: their later messages wait (FIFO)
        for index, record in decoded:
            message = _message(messages[index])
            if message.group_id in held:
                results[index] = _result(message, Status.SKIPPED, _held_reason(message.group_id))
                continue
            try:
                (outcome,) = self.handler.handle([record])
                result = _from_outcome(message, outcome)
            except self.handler.transient_errors as exc:
                result = _transient(message, str(exc), outage=True)
            except FatalError:
                raise
            except Exception as exc:  # noqa: BLE001 - this message alone fails; retried until its last receive
                result = _transient(message, f"processing error: {_reason_of(exc)}", outage=False)
            results[index] = result = _on_last_receive(result, max_receive_count)
            if result.status is Status.TRANSIENT:
                held.add(message.group_id)

    def settle(self, queue: Queue, result: BatchResult, *, delete: bool, outage_delay: float | None) -> BatchResult:
        """Act on ``result`` in ``queue``; returns the result as settled.

        Permanent failures move to the dead-letter queue now (one that cannot be
        moved stays a failure, retried). A message's own transient failure goes
        through :meth:`Queue.fail` (visible again after its ``retry_delay``, or
        now; dead-lettered with its reason on its last receive). Skipped messages become visible again now,
        so their group is not held for a visibility timeout. An outage's
        messages become visible after ``outage_delay`` (None: left to their
        visibility timeout). With ``delete``, succeeded messages are deleted.
        Raises :class:`~cv_analytics.exceptions.QueueUnavailableError` only from
        the delete (the rest is best effort: a message left alone comes back at
        its visibility timeout).
        """
        settled: list[ItemResult] = []
        for item in result.items:
            message = item.message
            if message is None or item.status is Status.SUCCEEDED:
                settled.append(item)
            elif item.status is Status.PERMANENT:
                settled.append(_dead_letter(queue, item, message))
            elif item.status is Status.SKIPPED:
                _change_visibility(queue, message, 0.0)
                settled.append(item)
            elif item.outage:
                if outage_delay is not None:
                    _change_visibility(queue, message, outage_delay)
                settled.append(item)
            else:
                settled.append(_fail(queue, item, message))
        done = BatchResult(settled)
        if delete and done.to_delete:
            queue.delete_batch([m.receipt_handle for m in done.to_delete])
        return done


# -- helpers ------------------------------------------------------------------------------


def _apply_fifo_rule(items: list[ItemResult]) -> list[ItemResult]:
    """Later messages of a group with a message to retry are skipped, unless already handled."""
    held: set[str | None] = set()
    ruled: list[ItemResult] = []
    for item in items:
        if item.group_id in held and item.status is not Status.PERMANENT:
            if item.status is Status.SUCCEEDED:
                # the handler broke its contract (handled past a retried message): it is done, delete it
                log.warning("message %s was handled after an earlier message of its group failed", item.message_id)
            else:
                item = ItemResult(item.message_id, item.group_id, Status.SKIPPED, _held_reason(item.group_id),
                                  item.message)  # fmt: skip
        elif item.status is Status.TRANSIENT:
            held.add(item.group_id)
        ruled.append(item)
    return ruled


def _on_last_receive(item: ItemResult, max_receive_count: int | None) -> ItemResult:
    """A message's own failure on its last receive is final: permanent (an outage never is)."""
    message = item.message
    if (
        item.status is Status.TRANSIENT
        and not item.outage
        and message is not None
        and max_receive_count is not None
        and message.receive_count >= max_receive_count
    ):
        return _result(message, Status.PERMANENT, f"{item.reason} (receive {message.receive_count}, the last)")
    return item


def _dead_letter(queue: Queue, item: ItemResult, message: Message) -> ItemResult:
    log.warning("permanent failure of message %s, dead-lettering it: %s", message.message_id, item.reason)
    try:
        if queue.fail(message, item.reason or "permanent failure", permanent=True):
            return _result(message, Status.DEAD_LETTERED, item.reason, detail=item.detail)
    except ReceiptHandleError:
        log.warning("message %s was received again elsewhere; leaving it to that delivery", message.message_id)
    except QueueError as exc:  # the DLQ is unreachable or refused it: it stays, and comes back
        log.warning("could not dead-letter message %s: %s", message.message_id, exc)
    return item


def _fail(queue: Queue, item: ItemResult, message: Message) -> ItemResult:
    try:
        if queue.fail(message, item.reason or "failed", retry_delay=item.retry_delay or 0.0):
            return _result(message, Status.DEAD_LETTERED, item.reason)
    except QueueError as exc:  # stale handle or queue down: the visibility timeout brings it back
        log.warning("could not release failed message %s: %s", message.message_id, exc)
    return item


def _change_visibility(queue: Queue, message: Message, delay: float) -> None:
    try:
        queue.change_visibility(message.receipt_handle, delay)
    except QueueError as exc:  # stale handle or queue down: the visibility timeout does it later
        log.warning("could not make message %s visible again: %s", message.message_id, exc)


def _from_outcome(message: Message, outcome: Outcome) -> ItemResult:
    if isinstance(outcome, Succeeded):
        return _result(message, Status.SUCCEEDED, detail=outcome.detail)
    if isinstance(outcome, PermanentFailure):
        return _result(message, Status.PERMANENT, outcome.reason[:MAX_REASON_CHARS])
    if isinstance(outcome, TransientFailure):
        return replace(_transient(message, outcome.reason, outage=outcome.outage), retry_delay=outcome.retry_delay)
    raise TypeError(f"a handler returns Succeeded, PermanentFailure or TransientFailure, not {outcome!r}")


def _result(
    message: Message, status: Status, reason: str | None = None, *, detail: Any = None, outage: bool = False
) -> ItemResult:
    return ItemResult(message.message_id, message.group_id, status, reason, message, outage, detail)


def _transient(message: Message, reason: str, *, outage: bool) -> ItemResult:
    return _result(message, Status.TRANSIENT, reason[:MAX_REASON_CHARS], outage=outage)


def _message(message: Message | UnreadableRecord) -> Message:
    assert isinstance(message, Message)
    return message


def _held_reason(group: str | None) -> str:
    return f"an earlier message of group {group!r} is retried"


def _reason_of(exc: BaseException) -> str:
    """An exception as a reason: its message for our own errors, its repr otherwise; bounded."""
    if isinstance(exc, RecursionError):
        text = f"nested too deep to decode (RecursionError: {exc})"
    elif isinstance(exc, PermanentError | ValueError) and str(exc):
        text = str(exc)
    else:
        text = repr(exc)
    return text[:MAX_REASON_CHARS]
