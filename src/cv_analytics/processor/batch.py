"""One batch of queue messages in, each message's outcome out, as data.

Shaped after AWS Powertools' batch processors: every record's outcome is
recorded, and one function builds the Lambda partial-batch response
``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}``. The FIFO rule
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html):
once a message of a group fails, the rest of that group's messages in the batch
fail too, unprocessed, so the group's order is kept on retry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from ..events import QueryEvent, ResponseEvent, parse_event
from ..exceptions import FatalError, InvalidEventError, ReceiptHandleError, StoreError, StoreUnavailableError
from ..queues.base import Message, Queue
from ..stores.base import Store
from ..stores.models import RecordOutcome

log = logging.getLogger(__name__)


class Status(str, Enum):
    SUCCEEDED = "succeeded"  # recorded (or a harmless duplicate): delete it
    FAILED = "failed"  # could not be handled; retried, and dead-lettered on its last receive
    SKIPPED = "skipped"  # not attempted: an earlier message of its group failed (FIFO rule)
    DEAD_LETTERED = "dead_lettered"  # moved to the DLQ with its reason: already gone from the queue


@dataclass(frozen=True)
class ItemResult:
    message: Message
    status: Status
    reason: str | None = None
    #: transient (store down): worth retrying as is; not the message's fault
    transient: bool = False
    outcome: RecordOutcome | None = None


@dataclass
class BatchResult:
    items: list[ItemResult] = field(default_factory=list)

    def with_status(self, *statuses: Status) -> list[ItemResult]:
        return [i for i in self.items if i.status in statuses]

    @property
    def to_delete(self) -> list[Message]:
        return [i.message for i in self.items if i.status is Status.SUCCEEDED]

    @property
    def to_retry(self) -> list[ItemResult]:
        return self.with_status(Status.FAILED, Status.SKIPPED)

    def lambda_response(self) -> dict[str, list[dict[str, str]]]:
        """The partial batch response Lambda's SQS event source mapping reads."""
        return {"batchItemFailures": [{"itemIdentifier": i.message.message_id} for i in self.to_retry]}

    def count(self, outcome: RecordOutcome) -> int:
        return sum(1 for i in self.items if i.outcome is outcome)


class BatchProcessor:
    """Parses, correlates and records one batch; dead-letters poison messages.

    It never deletes: the embedded worker deletes what succeeded, and on Lambda
    the event source mapping does, from the partial batch response.
    """

    def __init__(self, queue: Queue, store: Store) -> None:
        self.queue = queue
        self.store = store

    def process(self, messages: Sequence[Message]) -> BatchResult:
        results: dict[int, ItemResult] = {}
        failed_groups: dict[str | None, str] = {}
        parsed: list[tuple[int, QueryEvent | ResponseEvent]] = []

        for index, message in enumerate(messages):
            group = message.group_id
            if group in failed_groups:
                results[index] = ItemResult(message, Status.SKIPPED, failed_groups[group])
                continue
            try:
                parsed.append((index, parse_event(message.body)))
            except InvalidEventError as exc:
                results[index] = self._poison(message, str(exc))
                if results[index].status is Status.FAILED:
                    failed_groups[group] = f"an earlier message of group {group!r} failed"

        if parsed:
            # every parsed event precedes any failure of its group: the pass above
            # skipped whatever came after one
            try:
                outcomes = self.store.record_events([e for _, e in parsed])
            except StoreError as exc:
                self._release(parsed, messages, results, exc)
            except FatalError:  # a damaged database: no message's fault, and no retry helps
                raise
            except Exception:  # a bug or data no one foresaw: isolate the message that trips it
                log.exception("recording a batch of %d failed; retrying one by one", len(parsed))
                self._record_one_by_one(parsed, messages, results, failed_groups)
            else:
                for (index, _), outcome in zip(parsed, outcomes, strict=True):
                    results[index] = ItemResult(messages[index], Status.SUCCEEDED, outcome=outcome)

        return BatchResult([results[i] for i in range(len(messages))])

    def _record_one_by_one(
        self,
        parsed: list[tuple[int, QueryEvent | ResponseEvent]],
        messages: Sequence[Message],
        results: dict[int, ItemResult],
        failed_groups: dict[str | None, str],
    ) -> None:
        for index, event in parsed:
            message = messages[index]
            if message.group_id in failed_groups:
                results[index] = ItemResult(message, Status.SKIPPED, failed_groups[message.group_id])
                continue
            try:
                (outcome,) = self.store.record_events([event])
            except StoreError as exc:
                self._release([(index, event)], messages, results, exc)
            except FatalError:
                raise
            except Exception as exc:
                results[index] = self._poison(message, f"processing error: {exc!r}")
                if results[index].status is Status.FAILED:
                    failed_groups[message.group_id] = f"an earlier message of group {message.group_id!r} failed"
            else:
                results[index] = ItemResult(message, Status.SUCCEEDED, outcome=outcome)

    @staticmethod
    def _release(
        parsed: list[tuple[int, QueryEvent | ResponseEvent]],
        messages: Sequence[Message],
        results: dict[int, ItemResult],
        exc: StoreError,
    ) -> None:
        """The store failed, not the messages: retry them as they are."""
        if isinstance(exc, StoreUnavailableError):
            log.warning("store unavailable, %d message(s) will be retried: %s", len(parsed), exc)
        else:
            log.error("store error, %d message(s) will be retried: %s", len(parsed), exc)
        for index, _ in parsed:
            results[index] = ItemResult(messages[index], Status.FAILED, str(exc), transient=True)

    def _poison(self, message: Message, reason: str) -> ItemResult:
        """A message that can never succeed: retried until its last receive, then dead-lettered."""
        log.warning("bad message %s (receive %d): %s", message.message_id, message.receive_count, reason)
        try:
            if self.queue.fail(message, reason):
                return ItemResult(message, Status.DEAD_LETTERED, reason)
        except ReceiptHandleError:
            # received again elsewhere since (our visibility timeout ran out): that delivery owns it now
            log.warning("message %s was received again elsewhere; leaving it to that worker", message.message_id)
        return ItemResult(message, Status.FAILED, reason)
