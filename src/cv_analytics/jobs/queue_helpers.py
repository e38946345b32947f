"""The queue helpers the seed's client offers, over the :class:`~cv_analytics.queues.base.Queue` seam.

Send a job request, send a job result, receive messages, delete a message, a
queue's attributes and its message count: thin, so that a script or the Lambda
handlers say what they do without knowing the message format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..queues.base import MAX_BATCH_SIZE, Message, Queue, QueueAttributes
from ..stores.jobs import Job, JobStatus
from .messages import JobRequest, JobResult


def send_job_request(queue: Queue, job: Job) -> str:
    """Put ``job`` on the request queue; the message id."""
    return queue.send(JobRequest(job_id=job.job_id, type=job.type, input=job.input).to_body())


def send_job_result(
    queue: Queue,
    job_id: str,
    status: JobStatus,
    *,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
    attempt: int = 0,
) -> str:
    """Put how a job ended on the response queue; the message id."""
    message = JobResult(
        job_id=job_id, status=status, result=None if result is None else dict(result), error=error, attempt=attempt
    )
    return queue.send(message.to_body())


def receive_messages(
    queue: Queue,
    max_messages: int = MAX_BATCH_SIZE,
    *,
    wait_seconds: float | None = None,
    visibility_timeout: float | None = None,
) -> list[Message]:
    """Up to ``max_messages`` (1–10), long polling up to ``wait_seconds``."""
    return queue.receive(max_messages, wait_seconds=wait_seconds, visibility_timeout=visibility_timeout)


def delete_message(queue: Queue, receipt_handle: str) -> None:
    queue.delete(receipt_handle)


def queue_attributes(queue: Queue) -> QueueAttributes:
    return queue.attributes()


def queue_message_count(queue: Queue) -> int:
    """Messages in the queue: visible, in flight and delayed."""
    attributes = queue.attributes()
    return attributes.visible + attributes.in_flight + attributes.delayed
