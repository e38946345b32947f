"""Small helpers the queue tests share."""

from __future__ import annotations

from collections.abc import Sequence

from cv_analytics.queues.base import Message, OutgoingMessage, Queue


def send(queue: Queue, body: str, *, group: str = "g", dedup: str | None = None) -> str:
    """Send one FIFO message; the deduplication id defaults to the body."""
    return queue.send(body, group_id=group, dedup_id=dedup or body)


def send_many(queue: Queue, bodies: Sequence[str], *, group: str = "g") -> list[str]:
    """Send in batches of ten, each body its own deduplication id."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        outcomes = queue.send_batch([OutgoingMessage(b, group, b) for b in bodies[start : start + 10]])
        assert all(o.ok for o in outcomes), outcomes
        ids += [o.message_id for o in outcomes if o.message_id]
    return ids


def drain(queue: Queue, *, limit: int = 10_000) -> list[Message]:
    """Receive and delete until a receive comes back empty; the messages in receive order."""
    seen: list[Message] = []
    while len(seen) < limit:
        batch = queue.receive(10)
        if not batch:
            return seen
        seen += batch
        queue.delete_batch([m.receipt_handle for m in batch])
    raise AssertionError(f"queue {queue.name} did not drain within {limit} messages")


def bodies(messages: Sequence[Message]) -> list[str]:
    return [m.body for m in messages]
