"""Queues with SQS FIFO semantics: the protocol, and backends chosen by URL."""

from .base import (
    JOBS_QUEUE_CONFIG,
    MAX_BATCH_SIZE,
    Message,
    OutgoingMessage,
    Queue,
    QueueAttributes,
    QueueBackend,
    QueueConfig,
    SendOutcome,
)

__all__ = [
    "JOBS_QUEUE_CONFIG",
    "MAX_BATCH_SIZE",
    "Message",
    "OutgoingMessage",
    "Queue",
    "QueueAttributes",
    "QueueBackend",
    "QueueConfig",
    "SendOutcome",
]
