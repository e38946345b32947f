"""An SQS event through a batch engine, once for every SQS-fed handler: records → messages → outcomes → settled.

The records become messages (:mod:`cv_analytics.queues.lambda_records`),
grouped by the queue they came from, and go through
:class:`~cv_analytics.queues.batch.BatchEngine` as the embedded consumers'
do: permanent failures go to that queue's dead-letter queue with their reason,
a message's own failures are retried through the queue, an outage is left to
the visibility timeout (a natural backoff). Lambda deletes what succeeded, and
the failures come back as the partial batch response
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...queues.batch import BatchEngine, BatchResult, ItemResult, Status, UnreadableRecord
from ...queues.lambda_records import by_source, messages_of
from .logs import MAX_LOGGED_REASON, logger

if TYPE_CHECKING:
    from ...queues.base import Message, Queue

#: The reason given to a message left for another invocation.
NOT_STARTED_REASON = "not started: too little time left in this invocation; back in the queue for the next"


def process_records(
    engine: BatchEngine[Any],
    records: Sequence[Mapping[str, Any]],
    queue_for: Callable[[str | None], Queue],
    *,
    may_start: Callable[[], bool] | None = None,
) -> list[tuple[Queue, BatchResult]]:
    """Each source queue with its settled result.

    ``may_start``: on a standard queue, hand the engine one message at a time
    and, once it answers False (the invocation is running out of time), leave
    the rest unattempted, visible again at once for another invocation.
    """
    settled: list[tuple[Queue, BatchResult]] = []
    for source_arn, batch in by_source(records):
        queue = queue_for(source_arn)
        messages = _messages(batch)
        if not messages:
            continue
        if may_start is None or queue.config.fifo:  # a FIFO group's order needs the whole batch at once
            outcome = engine.process(messages, fifo=queue.config.fifo, max_receive_count=queue.config.max_receive_count)
        else:
            outcome = _one_at_a_time(engine, messages, queue, may_start)
        settled.append((queue, engine.settle(queue, outcome, delete=False, outage_delay=None)))
    return settled


def batch_item_failures(settled: Sequence[tuple[Queue, BatchResult]]) -> list[str]:
    """The message ids Lambda must not delete."""
    return [f["itemIdentifier"] for _, result in settled for f in result.lambda_response()["batchItemFailures"]]


def _messages(records: Sequence[Mapping[str, Any]]) -> list[Message | UnreadableRecord]:
    messages, nameless = messages_of(records)
    for record in nameless:
        logger().error(
            "an SQS record without a messageId cannot be reported as failed; ignoring it",
            extra={"fields": {"record": str(record)[:MAX_LOGGED_REASON]}},
        )
    return messages


def _one_at_a_time(
    engine: BatchEngine[Any], messages: Sequence[Message | UnreadableRecord], queue: Queue, may_start: Callable[[], bool]
) -> BatchResult:
    items: list[ItemResult] = []
    for index, message in enumerate(messages):
        if not may_start():
            for left in messages[index:]:
                if isinstance(left, UnreadableRecord):
                    items.append(ItemResult(left.message_id, left.group_id, Status.TRANSIENT, left.reason))
                else:  # skipped: the engine's settle makes it visible again at once
                    items.append(ItemResult(left.message_id, left.group_id, Status.SKIPPED, NOT_STARTED_REASON, left))
            break
        items += engine.process([message], fifo=False, max_receive_count=queue.config.max_receive_count).items
    return BatchResult(items)
