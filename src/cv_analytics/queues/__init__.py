"""Queues with SQS semantics (FIFO and standard): the protocol, the presets, and backends chosen by URL."""

from .base import (
    MAX_BATCH_SIZE,
    Message,
    OutgoingMessage,
    Queue,
    QueueAttributes,
    QueueBackend,
    QueueConfig,
    SendOutcome,
)
from .presets import ANALYTICS, JOBS_REQUEST, JOBS_RESPONSE, PRESETS, QueuePreset, dead_letter_queue_name

__all__ = [
    "ANALYTICS",
    "JOBS_REQUEST",
    "JOBS_RESPONSE",
    "MAX_BATCH_SIZE",
    "PRESETS",
    "Message",
    "OutgoingMessage",
    "Queue",
    "QueueAttributes",
    "QueueBackend",
    "QueueConfig",
    "QueuePreset",
    "SendOutcome",
    "dead_letter_queue_name",
]
