"""The queues of cv-analytics, defined once: their kinds, settings and dead-letter queues.

The embedded backends create queues from these presets, ``aws bootstrap``
(:mod:`cv_analytics.deploy.resources`) and ``infra/template.yaml`` declare the
same settings on SQS, and ``tests/aws/test_template.py`` holds the template to
them. The settings are DESIGN.md's "Semantics to get right".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .base import QueueConfig

DAY = 24 * 3600.0

#: A message moves to its dead-letter queue after this many receives.
MAX_RECEIVE_COUNT = 3
#: Dead-letter queues keep messages 14 days, SQS's maximum, so there is time to look at them.
DLQ_RETENTION_SECONDS = 14 * DAY
#: The analytics queue's visibility timeout on the embedded backends (the
#: default of ``CV_ANALYTICS_VISIBILITY_TIMEOUT``): the embedded worker handles a
#: batch in milliseconds, so a crashed worker's messages come back after 30 s.
EMBEDDED_ANALYTICS_VISIBILITY_TIMEOUT = 30.0


def dead_letter_queue_name(name: str) -> str:
    """``orders`` → ``orders-dlq``; ``orders.fifo`` → ``orders-dlq.fifo`` (SQS wants the suffix last)."""
    if name.endswith(".fifo"):
        return f"{name[: -len('.fifo')]}-dlq.fifo"
    return f"{name}-dlq"


def dead_letter_config(config: QueueConfig) -> QueueConfig:
    """A queue's dead-letter queue: same kind and limits, kept at least 14 days, never delayed."""
    return dataclasses.replace(
        config, retention_seconds=max(config.retention_seconds, DLQ_RETENTION_SECONDS), delay_seconds=0.0
    )


def sqs_attributes(config: QueueConfig) -> dict[str, str]:
    """The SQS queue attributes (``CreateQueue``'s form) a configuration maps to, redrive policy aside.

    A standard queue names neither ``FifoQueue`` nor ``ContentBasedDeduplication``:
    SQS refuses those attributes on a standard queue.
    """
    attributes = {
        "MessageRetentionPeriod": str(int(config.retention_seconds)),
        "VisibilityTimeout": str(math.ceil(config.visibility_timeout)),
        "MaximumMessageSize": str(config.max_message_bytes),
        "DelaySeconds": str(math.ceil(config.delay_seconds)),
        "ReceiveMessageWaitTimeSeconds": str(math.ceil(config.receive_wait_seconds)),
    }
    if config.fifo:
        attributes["FifoQueue"] = "true"
        attributes["ContentBasedDeduplication"] = "true" if config.content_based_dedup else "false"
    return attributes


@dataclass(frozen=True)
class QueuePreset:
    """A named queue with its settings; its dead-letter queue follows from them."""

    #: The queue's name without the ``.fifo`` suffix SQS requires of FIFO queues.
    name: str
    config: QueueConfig

    @property
    def queue_name(self) -> str:
        """The name as SQS wants it: ``analytics.fifo`` for a FIFO queue, ``ai-job-request`` otherwise."""
        return f"{self.name}.fifo" if self.config.fifo else self.name

    @property
    def dead_letter_name(self) -> str:
        """The dead-letter queue's name without suffix: ``analytics-dlq``."""
        return dead_letter_queue_name(self.name)

    @property
    def dead_letter_config(self) -> QueueConfig:
        return dead_letter_config(self.config)

    def with_visibility_timeout(self, seconds: float) -> QueueConfig:
        """This preset's configuration with another visibility timeout (the embedded analytics queue's 30 s)."""
        return dataclasses.replace(self.config, visibility_timeout=seconds)


#: Analytics events: FIFO per session, content-based deduplication as a safety
#: net for producers that send no deduplication id. 300 s on SQS: at least six
#: times the processor Lambda's 30 s timeout, as AWS advises for an event source
#: (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
ANALYTICS = QueuePreset(
    "analytics",
    QueueConfig(
        fifo=True,
        visibility_timeout=300.0,
        retention_seconds=4 * DAY,
        max_receive_count=MAX_RECEIVE_COUNT,
        content_based_dedup=True,
    ),
)
#: Job requests: a standard queue (at-least-once, no groups), long polled, a
#: job may run up to the 900 s visibility timeout.
JOBS_REQUEST = QueuePreset(
    "ai-job-request",
    QueueConfig(
        fifo=False,
        visibility_timeout=900.0,
        retention_seconds=14 * DAY,
        max_receive_count=MAX_RECEIVE_COUNT,
        receive_wait_seconds=20.0,
    ),
)
#: Job results on their way to the jobs table: a standard queue.
JOBS_RESPONSE = QueuePreset(
    "ai-job-response",
    QueueConfig(
        fifo=False,
        visibility_timeout=300.0,
        retention_seconds=14 * DAY,
        max_receive_count=MAX_RECEIVE_COUNT,
    ),
)

#: Every preset by name.
PRESETS: dict[str, QueuePreset] = {p.name: p for p in (ANALYTICS, JOBS_REQUEST, JOBS_RESPONSE)}


def preset(name: str) -> QueuePreset:
    """The preset called ``name`` (``analytics``, ``ai-job-request``, ``ai-job-response``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"no queue preset {name!r}; known: {', '.join(PRESETS)}") from None
