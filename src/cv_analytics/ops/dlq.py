"""Dead-letter queue inspection: every dead letter, with why and where it failed, left in place."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ..queues.base import (
    DEAD_LETTERED_AT_ATTRIBUTE,
    FAILURE_REASON_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    Message,
    Queue,
)


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter queue, as ``dlq show`` lists it."""

    message_id: str
    group_id: str | None
    #: Receives in the queue it failed in (None when unknown).
    receive_count: int | None
    reason: str | None
    #: The queue it failed in.
    source_queue: str | None
    #: When it was first sent (seconds since the epoch).
    first_seen_at: float
    #: When it entered the dead-letter queue (None when SQS moved it by itself).
    dead_lettered_at: float | None
    body: str

    @classmethod
    def of(cls, message: Message) -> DeadLetter:
        attributes = message.attributes
        return cls(
            message_id=message.message_id,
            group_id=message.group_id,
            receive_count=_number(attributes.get(RECEIVE_COUNT_ATTRIBUTE), int),
            reason=attributes.get(FAILURE_REASON_ATTRIBUTE),
            source_queue=attributes.get(SOURCE_QUEUE_ATTRIBUTE),
            first_seen_at=message.sent_at,
            dead_lettered_at=_number(attributes.get(DEAD_LETTERED_AT_ATTRIBUTE), float),
            body=message.body,
        )


def _number(text: str | None, kind: type[int] | type[float]) -> int | float | None:
    if text is None:
        return None
    with contextlib.suppress(ValueError):
        return kind(float(text)) if kind is int else kind(text)
    return None


def peek_dead_letters(queue: Queue, limit: int = 10) -> list[DeadLetter]:
    """Up to ``limit`` messages of ``queue``'s dead-letter queue, oldest first,
    without consuming their receives (:meth:`Queue.peek`; on SQS see its limits)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    dlq = queue.require_dead_letter_queue("list dead letters")
    return [DeadLetter.of(message) for message in dlq.peek(limit)]
