"""The SQS queue backend: clients, queue lookup by name, URL or ARN, creation from the presets."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...boto.clients import MAX_ATTEMPTS, client_config, make_client, translated_errors
from ...clock import Clock, SystemClock
from ...exceptions import QueueError, QueueNotFoundError, QueueUnavailableError
from ..base import QueueBackend, QueueConfig
from ..presets import dead_letter_config, dead_letter_queue_name, sqs_attributes
from .mapping import _NOT_FOUND, _redrive_policy
from .queue import SQSQueue

if TYPE_CHECKING:
    import boto3

    from ...boto.metering import RequestCounter

log = logging.getLogger(__name__)


class SQSQueueBackend(QueueBackend):
    """Queues on Amazon SQS (or an emulator at ``endpoint_url``).

    ``queue_urls`` maps queue names to URLs (the wiring reads them from
    ``AWS_SQS_URL`` and the jobs variables); any other name is looked up with
    ``GetQueueUrl``, FIFO names with their ``.fifo`` suffix. With
    ``create_missing`` a missing queue is created with its dead-letter queue
    ``<name>-dlq``, as the embedded backend does; otherwise a missing queue
    raises :class:`~cv_analytics.exceptions.QueueNotFoundError`.
    ``request_counter`` counts every request (:mod:`cv_analytics.boto.metering`).
    ``client`` (and ``single_attempt_client``, ``cloudwatch_client``) are boto3
    clients to use instead of building them from ``region``, ``endpoint_url``
    and ``session``: a Lambda handler shares its clients across invocations.
    """

    def __init__(
        self,
        *,
        queue_urls: Mapping[str, str] | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
        create_missing: bool = False,
        request_counter: RequestCounter | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        peek_for_oldest_age: bool | None = None,
        clock: Clock | None = None,
        client: Any = None,
        single_attempt_client: Any = None,
        cloudwatch_client: Any = None,
    ) -> None:
        self.queue_urls = dict(queue_urls or {})
        self.endpoint_url = endpoint_url
        self.create_missing = create_missing
        self.clock = clock or SystemClock()
        #: see the module docstring: peeking counts as a receive, so only on an emulator by default
        self.peek_for_oldest_age = bool(endpoint_url) if peek_for_oldest_age is None else peek_for_oldest_age
        self._client_options: dict[str, Any] = {
            "region": region, "endpoint_url": endpoint_url, "session": session, "request_counter": request_counter,
        }  # fmt: skip
        self.client = client or make_client(
            "sqs", config=client_config(max_attempts=max_attempts), **self._client_options
        )
        self._queues: dict[str, SQSQueue] = {}
        self._lock = threading.Lock()
        # made on first use: a client costs tens of milliseconds to build (Lambda cold starts)
        self._single_attempt: Any = single_attempt_client
        self._cloudwatch: Any = cloudwatch_client

    @property
    def single_attempt_client(self) -> Any:
        """An SQS client that does not retry: for calls whose failure has a fallback."""
        with self._lock:
            if self._single_attempt is None:
                self._single_attempt = make_client("sqs", config=client_config(max_attempts=1), **self._client_options)
            return self._single_attempt

    @property
    def cloudwatch(self) -> Any:
        """The CloudWatch client that reads ``ApproximateAgeOfOldestMessage`` (no retries: it is optional)."""
        with self._lock:
            if self._cloudwatch is None:
                self._cloudwatch = make_client("cloudwatch", config=client_config(max_attempts=1), **self._client_options)
            return self._cloudwatch

    # -- queues ---------------------------------------------------------------

    def queue(self, name: str, config: QueueConfig | None = None) -> SQSQueue:
        """The queue ``name`` (a configured name such as ``analytics``, or an SQS queue name)."""
        with self._lock:
            cached = self._queues.get(name)
        if cached is not None:
            return cached
        url = self._find_url(name, config)
        if url is None:
            if not self.create_missing:
                raise QueueNotFoundError(
                    f"SQS queue {self._physical_name(name, config)!r} does not exist: create the queues with "
                    "`cv-analytics aws bootstrap` (or the CloudFormation stack) and export the URLs it prints "
                    "(AWS_SQS_URL, AI_JOB_REQUEST_QUEUE_URL, AI_JOB_RESPONSE_QUEUE_URL)"
                )
            url = self._create(self._physical_name(name, config), config or QueueConfig())
        queue = self.queue_by_url(url, fallback_config=config)
        with self._lock:
            return self._queues.setdefault(name, queue)

    def queue_by_url(self, url: str, *, fallback_config: QueueConfig | None = None) -> SQSQueue:
        """The queue at ``url``, configured from its attributes, with its dead-letter queue."""
        attributes = self._attributes_of(url)
        dlq: SQSQueue | None = None
        redrive = _redrive_policy(attributes)
        if redrive is not None:
            dlq_url = self._url_of_arn(str(redrive["deadLetterTargetArn"]))
            dlq = SQSQueue(self, dlq_url, attributes_of=self._attributes_of(dlq_url), base=fallback_config)
        queue = SQSQueue(self, url, attributes_of=attributes, base=fallback_config, dead_letter_queue=dlq)
        if dlq is not None:
            dlq._source = queue
        return queue

    def close(self) -> None:
        for client in (self.client, self._single_attempt, self._cloudwatch):
            if client is not None:
                client.close()

    # -- plumbing shared by the queues -------------------------------------------

    def guard(self, action: str) -> contextlib.AbstractContextManager[None]:
        """Turn boto errors into the queue seam's error types."""
        return translated_errors(
            action,
            "SQS",
            missing_codes=_NOT_FOUND,
            missing="the SQS queue does not exist ({detail}); check the queue URL, "
            "or create the queues with `cv-analytics aws bootstrap`",
            missing_error=QueueNotFoundError,
            unavailable=QueueUnavailableError,
            error=QueueError,
        )

    def _physical_name(self, name: str, config: QueueConfig | None) -> str:
        fifo = (config or QueueConfig()).fifo
        return f"{name}.fifo" if fifo and not name.endswith(".fifo") else name

    def _find_url(self, name: str, config: QueueConfig | None) -> str | None:
        if name in self.queue_urls:
            return self.queue_urls[name]
        try:
            with self.guard(f"look up SQS queue {name!r}"):
                return str(self.client.get_queue_url(QueueName=self._physical_name(name, config))["QueueUrl"])
        except QueueNotFoundError:
            return None

    def _url_of_arn(self, arn: str) -> str:
        # arn:aws:sqs:<region>:<account>:<name>
        parts = arn.split(":")
        if len(parts) != 6:
            raise QueueError(f"the redrive policy names {arn!r}, which is not an SQS queue ARN")
        with self.guard(f"find dead-letter queue {parts[5]!r}"):
            return str(self.client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])

    def _attributes_of(self, url: str) -> dict[str, str]:
        with self.guard(f"read the attributes of SQS queue {url}"):
            return dict(self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])

    def _create(self, name: str, config: QueueConfig) -> str:
        """Create ``name`` and its dead-letter queue, named and configured by the presets' rules."""
        with self.guard(f"create SQS queue {name!r}"):
            dlq_url = self.client.create_queue(
                QueueName=dead_letter_queue_name(name), Attributes=sqs_attributes(dead_letter_config(config))
            )["QueueUrl"]
            dlq_arn = self.client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            attributes = sqs_attributes(config)
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": config.max_receive_count}
            )
            return str(self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
