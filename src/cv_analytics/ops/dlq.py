"""Dead-letter queue inspection and redrive."""

from __future__ import annotations

from dataclasses import dataclass

from ..queues.base import FAILURE_REASON_ATTRIBUTE, MAX_BATCH_SIZE, Queue


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    group_id: str | None
    receive_count: str | None
    reason: str | None
    body: str


def peek_dead_letters(queue: Queue, limit: int = MAX_BATCH_SIZE) -> list[DeadLetter]:
    """Up to ``limit`` messages of ``queue``'s DLQ, left in place (made visible again at once)."""
    dlq = queue.dead_letter_queue
    if dlq is None:
        raise ValueError(f"queue {queue.name!r} has no dead-letter queue")
    seen: list[DeadLetter] = []
    handles: list[str] = []
    while len(seen) < limit:
        batch = dlq.receive(min(MAX_BATCH_SIZE, limit - len(seen)), visibility_timeout=30.0)
        if not batch:
            break
        for m in batch:
            handles.append(m.receipt_handle)
            seen.append(
                DeadLetter(
                    m.message_id,
                    m.group_id,
                    m.attributes.get("receiveCount"),
                    m.attributes.get(FAILURE_REASON_ATTRIBUTE),
                    m.body,
                )
            )
    for handle in handles:
        dlq.change_visibility(handle, 0)
    return seen
