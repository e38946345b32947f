"""The Amazon SQS queue backend, through boto3.

The semantics live in :class:`~cv_analytics.queues.base.Queue`; this module maps
its primitives onto SQS calls, and SQS's answers back onto the seam's types.

How each part maps, and why:

* **Sending**: ``SendMessageBatch``. Entries are grouped so that no request
  carries more than SQS's 256 KiB batch payload. A per-entry failure
  (``Failed`` in the response) becomes that entry's
  :class:`~cv_analytics.queues.base.SendOutcome`. A request SQS refuses as a
  whole for one bad entry (``InvalidParameterValue`` for a message too long,
  ``BatchRequestTooLong``) is split in halves and retried until the bad entry
  stands alone, so only it fails. Connection errors, throttling and 5xx raise
  :class:`~cv_analytics.exceptions.QueueUnavailableError`: nothing of the batch
  is known to be sent, and a retry is safe because FIFO deduplication ids make
  it idempotent.
* **Receiving**: ``ReceiveMessage`` with long polling (``WaitTimeSeconds``),
  the system attributes the seam needs (``ApproximateReceiveCount``,
  ``SentTimestamp``, ``MessageGroupId``, ``MessageDeduplicationId``) and every
  message attribute. FIFO receives carry a ``ReceiveRequestAttemptId``, so
  botocore's retry of a receive whose answer was lost gets the same messages
  back instead of hiding them for a visibility timeout
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html).
  SQS counts time in whole seconds: waits and visibility timeouts are rounded up.
* **Configuration**: the queue's own attributes are the truth (visibility
  timeout, retention, FIFO, content-based deduplication, maximum size,
  ``maxReceiveCount`` from the ``RedrivePolicy``). A config passed to
  :meth:`SQSQueueBackend.queue` is used only to create a missing queue, and
  only with ``create_missing=True``; on AWS the queues come from the
  CloudFormation stack or ``cv-analytics aws bootstrap``.
* **Dead letters**: the dead-letter queue is the ``deadLetterTargetArn`` of
  the queue's ``RedrivePolicy``. :meth:`Queue.fail` on a message's last receive
  sends a copy to it with ``failureReason``, ``sourceQueue`` and
  ``receiveCount`` attributes and the same group, then deletes the original.
  The copy also carries the original message id, sent time and deduplication
  id (in the ``sourceMessage`` attribute), and a message received from the
  dead-letter queue shows those, as one that SQS moved by itself does: a
  dead-lettered message keeps its identity whichever way it got there. Its
  deduplication id *in the dead-letter queue* is the original message id, as
  SQS does when it moves a FIFO message
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html),
  so two messages that shared a deduplication id are never merged there. A
  message SQS moved by itself (its consumer never called ``fail``: a crash, a
  timeout) has no failure reason of its own; read through the queue it was
  moved from, it is given one that says so.
  ``ChangeMessageVisibility`` cannot store a reason on a message, so a
  failure before the last receive is only logged.
* **Redrive**: ``StartMessageMoveTask`` (asynchronous, on AWS; the returned
  count is the dead-letter queue's approximate size when the task started).
  Where it is unavailable (emulators such as moto, a role without
  ``sqs:StartMessageMoveTask``) or a count is given, the base class's
  receive–send–delete.
* **Age of the oldest message**: not a queue attribute on SQS but the
  CloudWatch metric ``ApproximateAgeOfOldestMessage`` (1-minute resolution,
  read at most once a minute per queue). When CloudWatch has no datapoint
  (an emulator, a queue idle for six hours) the age is read from the
  ``SentTimestamp`` of the first receivable message, received with a
  visibility timeout of 0, *only* when ``peek_for_oldest_age`` allows it,
  which by default it does on an emulator endpoint alone: on AWS such a peek
  counts as a receive toward ``maxReceiveCount`` and could dead-letter a
  healthy message, so there the age is ``None`` until CloudWatch has it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..aws.clients import (
    MAX_ATTEMPTS,
    BotoCoreError,
    ClientError,
    client_config,
    describe,
    error_codes,
    is_unavailable,
    make_client,
    translated_errors,
)
from ..clock import Clock, SystemClock
from ..exceptions import (
    QueueError,
    QueueNotFoundError,
    QueueUnavailableError,
    ReceiptHandleError,
)
from .presets import dead_letter_config, dead_letter_queue_name, sqs_attributes
from .base import (
    FAILURE_REASON_ATTRIBUTE,
    MAX_BATCH_SIZE,
    MAX_MESSAGE_BYTES,
    dead_letter_attributes,
    request_batches,
    MAX_WAIT_SECONDS,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    Message,
    OutgoingMessage,
    Queue,
    QueueAttributes,
    QueueBackend,
    QueueConfig,
    SendOutcome,
)

if TYPE_CHECKING:
    import boto3

    from ..aws.metering import RequestCounter

__all__ = ["SQSQueue", "SQSQueueBackend"]

log = logging.getLogger(__name__)

#: SQS allows at most 10 message attributes per message.
MAX_MESSAGE_ATTRIBUTES = 10
#: Carries a dead-lettered copy's original id, sent time and deduplication id (JSON).
ORIGIN_ATTRIBUTE = "sourceMessage"
#: How long a CloudWatch reading of the oldest message's age is reused (the metric has 1-minute resolution).
AGE_CACHE_SECONDS = 60.0
#: How long a peek holds the messages it looks at (they are released as soon as it is done).
PEEK_VISIBILITY_SECONDS = 30.0
_SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId", "MessageDeduplicationId"]
_NOT_FOUND = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})
_STALE_HANDLE = {"ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"}
#: Whole-request refusals that one bad entry can cause: split the batch to find it.
_ENTRY_ERRORS = {
    "InvalidParameterValue",
    "BatchRequestTooLong",
    "AWS.SimpleQueueService.BatchRequestTooLong",
    "InvalidMessageContents",
    "MissingParameter",
    "InvalidAttributeValue",
    "InvalidAttributeName",
    "MessageTooLong",
}


class SQSQueueBackend(QueueBackend):
    """Queues on Amazon SQS (or an emulator at ``endpoint_url``).

    ``queue_urls`` maps queue names to URLs (the wiring reads them from
    ``AWS_SQS_URL`` and the jobs variables); any other name is looked up with
    ``GetQueueUrl``, FIFO names with their ``.fifo`` suffix. With
    ``create_missing`` a missing queue is created with its dead-letter queue
    ``<name>-dlq``, as the embedded backend does; otherwise a missing queue
    raises :class:`~cv_analytics.exceptions.QueueNotFoundError`.
    ``request_counter`` counts every request (:mod:`cv_analytics.aws.metering`).
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


class SQSQueue(Queue):
    """One SQS queue. Thread-safe (boto3 clients are); get it from :meth:`SQSQueueBackend.queue`."""

    def __init__(
        self,
        backend: SQSQueueBackend,
        url: str,
        *,
        attributes_of: Mapping[str, str],
        base: QueueConfig | None = None,
        dead_letter_queue: SQSQueue | None = None,
    ) -> None:
        super().__init__(url.rstrip("/").rsplit("/", 1)[-1], _config_from_attributes(attributes_of, base))
        self.url = url
        self.arn = attributes_of.get("QueueArn", "")
        self._backend = backend
        self._client = backend.client
        self._dlq = dead_letter_queue
        #: for a dead-letter queue: the queue whose redrive policy names it
        self._source: SQSQueue | None = None
        self._age_cache: tuple[float, float | None] | None = None  # (read at, age)

    def __repr__(self) -> str:
        return f"SQSQueue({self.url!r})"

    @property
    def dead_letter_queue(self) -> SQSQueue | None:
        return self._dlq

    # -- send -------------------------------------------------------------------

    def _send_batch(self, messages: list[OutgoingMessage]) -> list[str | SendOutcome]:
        results: list[str | SendOutcome] = []
        for _, chunk in request_batches(messages, _message_size):
            results += self._send_entries(chunk)
        return results

    def _send_entries(self, messages: list[OutgoingMessage]) -> list[str | SendOutcome]:
        entries = [self._entry(str(i), m) for i, m in enumerate(messages)]
        try:
            with self._backend.guard(f"send to SQS queue {self.name!r}"):
                response = self._client.send_message_batch(QueueUrl=self.url, Entries=entries)
        except QueueError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ClientError) and error_codes(cause) & _ENTRY_ERRORS):
                raise
            if len(messages) == 1:  # this entry alone is refused
                return [_refused(cause)]
            # one bad entry fails the whole request: split until it stands alone
            half = len(messages) // 2
            return self._send_entries(messages[:half]) + self._send_entries(messages[half:])
        results: list[str | SendOutcome] = [SendOutcome(0, error_code="InternalError", error="no answer")] * len(
            messages
        )
        for ok in response.get("Successful", []):
            results[int(ok["Id"])] = str(ok["MessageId"])
        for failed in response.get("Failed", []):
            code = str(failed.get("Code", "InternalError"))
            text = str(failed.get("Message", ""))
            results[int(failed["Id"])] = SendOutcome(
                0,
                error_code="MessageTooLong" if _is_too_long(code, text) else code,
                error=text or code,
                sender_fault=bool(failed.get("SenderFault", False)),
            )
        return results

    def _entry(self, entry_id: str, message: OutgoingMessage) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message.body}
        if self.config.fifo:
            entry["MessageGroupId"] = message.group_id
            if message.dedup_id is not None:
                entry["MessageDeduplicationId"] = message.dedup_id
        if message.attributes:
            entry["MessageAttributes"] = {
                name: {"DataType": "String", "StringValue": value} for name, value in message.attributes.items()
            }
        return entry

    # -- receive ----------------------------------------------------------------

    def _receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[Message]:
        request: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": min(int(MAX_WAIT_SECONDS), math.ceil(wait_seconds)),
            "VisibilityTimeout": math.ceil(visibility_timeout),
            "MessageSystemAttributeNames": _SYSTEM_ATTRIBUTES,
            "MessageAttributeNames": ["All"],
        }
        if self.config.fifo:
            request["ReceiveRequestAttemptId"] = uuid.uuid4().hex
        with self._backend.guard(f"receive from SQS queue {self.name!r}"):
            response = self._client.receive_message(**request)
        return [self._message(m) for m in response.get("Messages", [])]

    def _message(self, raw: Mapping[str, Any]) -> Message:
        system = raw.get("Attributes", {})
        attributes = _decode_attributes(raw.get("MessageAttributes", {}))
        message_id = str(raw["MessageId"])
        sent_ms = int(system.get("SentTimestamp", 0))
        dedup_id = system.get("MessageDeduplicationId")
        origin = attributes.pop(ORIGIN_ATTRIBUTE, None)
        if origin is not None:  # a copy we dead-lettered: show the original's identity
            with contextlib.suppress(ValueError, KeyError, TypeError):
                known = json.loads(origin)
                message_id, sent_ms, dedup_id = str(known["id"]), int(known["sent"]), known.get("dedup")
        elif self._source is not None and FAILURE_REASON_ATTRIBUTE not in attributes:
            source = self._source
            attributes[FAILURE_REASON_ATTRIBUTE] = (
                f"received {source.config.max_receive_count} times without being deleted: moved here by SQS "
                f"(maxReceiveCount {source.config.max_receive_count} of {source.name})"
            )
            attributes.setdefault(SOURCE_QUEUE_ATTRIBUTE, source.name)
            attributes.setdefault(RECEIVE_COUNT_ATTRIBUTE, str(source.config.max_receive_count))
        return Message(
            message_id=message_id,
            receipt_handle=str(raw["ReceiptHandle"]),
            body=str(raw["Body"]),
            group_id=system.get("MessageGroupId"),
            dedup_id=dedup_id,
            receive_count=int(system.get("ApproximateReceiveCount", 1)),
            sent_at=sent_ms / 1000.0,
            attributes=attributes,
        )

    # -- acknowledge, extend, fail ------------------------------------------------

    def _delete_batch(self, receipt_handles: list[str]) -> None:
        handles = list(dict.fromkeys(receipt_handles))  # SQS refuses a batch with the same handle twice
        if not handles:
            return
        with self._backend.guard(f"delete from SQS queue {self.name!r}"):
            response = self._client.delete_message_batch(
                QueueUrl=self.url, Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
            )
        # A handle SQS no longer knows (purged, moved, expired) is ignored, as the seam promises.
        failed = [f for f in response.get("Failed", []) if f.get("Code") not in _STALE_HANDLE]
        if failed:
            detail = "; ".join(f"{f.get('Code')}: {f.get('Message', '')}" for f in failed)
            error = QueueError if all(f.get("SenderFault") for f in failed) else QueueUnavailableError
            raise error(f"SQS did not delete {len(failed)} of {len(handles)} messages from {self.name!r}: {detail}")

    def _change_visibility(self, receipt_handle: str, timeout_seconds: float, reason: str | None) -> None:
        if reason is not None:
            # SQS keeps no reason on a message; the last one travels with it to the dead-letter queue via fail()
            log.info("message of %s failed and will be retried: %s", self.name, reason)
        try:
            with self._backend.guard(f"change the visibility of a message of SQS queue {self.name!r}"):
                self._client.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=math.ceil(timeout_seconds)
                )
        except QueueError as exc:
            if isinstance(exc.__cause__, ClientError) and error_codes(exc.__cause__) & _STALE_HANDLE:
                raise ReceiptHandleError(
                    f"receipt handle of a message of {self.name!r} is stale: the message was deleted, moved to "
                    "the dead-letter queue, or received again since; receive the message again"
                ) from exc
            raise

    def _dead_letter(self, message: Message, reason: str) -> None:
        dlq = self.require_dead_letter_queue("dead-letter a message")
        own = {
            **dead_letter_attributes({}, reason, self.name, message.receive_count, self._backend.clock.now()),
            ORIGIN_ATTRIBUTE: json.dumps(
                {"id": message.message_id, "sent": round(message.sent_at * 1000), "dedup": message.dedup_id},
                separators=(",", ":"),
            ),
        }
        kept = {k: v for k, v in message.attributes.items() if k not in own}
        room = MAX_MESSAGE_ATTRIBUTES - len(own)
        if len(kept) > room:
            log.warning(
                "dead-lettering a message of %s: SQS allows %d attributes, dropping %s",
                self.name, MAX_MESSAGE_ATTRIBUTES, sorted(kept)[room:],
            )  # fmt: skip
            kept = {k: kept[k] for k in sorted(kept)[:room]}
        copy = OutgoingMessage(
            message.body,
            message.group_id if dlq.config.fifo else None,
            # SQS's own FIFO move replaces the deduplication id with the message id, for the same reason
            message.message_id if dlq.config.fifo else None,
            {**kept, **own},
        )
        (outcome,) = dlq.send_batch([copy])
        if outcome.error_code == "MessageTooLong":
            # The body leaves little room: keep the essentials (a short reason, where from, how many receives).
            essentials = {**kept, **{k: v[:100] for k, v in own.items() if k != ORIGIN_ATTRIBUTE}}
            (outcome,) = dlq.send_batch([OutgoingMessage(copy.body, copy.group_id, copy.dedup_id, essentials)])
        if outcome.error_code == "MessageTooLong" and message.receive_count >= self.config.max_receive_count:
            # The body leaves no room for the reason: let SQS move it as it is. It is on its
            # last receive, so the redrive policy moves it on the next one (without a reason).
            log.warning(
                "message %s of %s is too large to carry its failure reason (%s): SQS's redrive policy moves it",
                message.message_id, self.name, reason,
            )  # fmt: skip
            self._change_visibility(message.receipt_handle, 0, None)
            return
        if not outcome.ok:
            raise QueueError(
                f"could not move message {message.message_id} of {self.name!r} to dead-letter queue {dlq.name!r}: "
                f"{outcome.error_code}: {outcome.error}"
            )
        self._delete_batch([message.receipt_handle])

    # -- whole-queue operations ---------------------------------------------------

    def _peek(self, limit: int) -> list[Message]:
        """SQS cannot read a message without receiving it; this does the best it allows.

        It receives with a visibility timeout of :data:`PEEK_VISIBILITY_SECONDS`
        until ``limit`` messages or an empty answer, then makes them all visible
        again at once. What that means:

        * Each peek is a receive: ``ApproximateReceiveCount`` rises. On a queue
          with a redrive policy that would move messages to its dead-letter
          queue, so peek works only on a queue without one (a dead-letter
          queue): elsewhere it raises :class:`QueueError`. A dead letter's own
          count (its ``receiveCount`` attribute, from the queue it failed in)
          does not change; ``receive_count`` here leaves this peek out.
        * FIFO: a receive hands out a group's messages in order and none behind
          those it holds in flight, so a peek shows at most the first
          :data:`MAX_BATCH_SIZE` messages of each group (SQS returns at most
          ten per receive), however large ``limit`` is. The embedded backends
          show every message.
        * For the peek's duration the messages are in flight: a consumer of
          the same queue does not see them meanwhile.
        """
        if self._dlq is not None:
            raise QueueError(
                f"cannot peek at SQS queue {self.name!r}: a peek is a receive there, and its redrive policy would "
                "count it toward maxReceiveCount; peek at its dead-letter queue, or receive instead"
            )
        seen: list[Message] = []
        handles: list[str] = []
        try:
            while len(seen) < limit:
                batch = self._receive(min(MAX_BATCH_SIZE, limit - len(seen)), 0.0, PEEK_VISIBILITY_SECONDS)
                if not batch:
                    break
                handles += [m.receipt_handle for m in batch]
                seen += [dataclasses.replace(m, receipt_handle="", receive_count=m.receive_count - 1) for m in batch]
        finally:
            for handle in handles:
                with contextlib.suppress(ReceiptHandleError):
                    self._change_visibility(handle, 0, None)
        return seen

    def redrive(self, max_messages: int | None = None) -> int:
        """Move the dead-letter queue's messages back here.

        On AWS, without ``max_messages``: an asynchronous ``StartMessageMoveTask``;
        returns how many messages the dead-letter queue held when it started.
        Otherwise (a count asked for, or the operation unavailable) the
        base class's receive–send–delete, which returns how many it moved.
        """
        dlq = self.require_dead_letter_queue("redrive")
        if max_messages is None:
            waiting = dlq._counts()
            if sum(waiting) == 0:
                return 0
            try:
                self._backend.single_attempt_client.start_message_move_task(SourceArn=dlq.arn, DestinationArn=self.arn)
            except ClientError as exc:
                # moto answers 500 (not implemented); a role may lack the permission: the generic way works anyway
                log.info("StartMessageMoveTask unavailable for %s (%s): redriving message by message", dlq.name, describe(exc))
            except BotoCoreError as exc:
                error = QueueUnavailableError if is_unavailable(exc) else QueueError
                raise error(f"cannot redrive SQS queue {self.name!r}: {describe(exc)}") from exc
            else:
                return waiting[0] + waiting[2]
        return super().redrive(max_messages)

    def attributes(self) -> QueueAttributes:
        """Approximate counts from SQS, and the oldest message's age (see the module docstring)."""
        visible, in_flight, delayed = self._counts()
        oldest = self._oldest_age() if visible + in_flight + delayed else None
        return QueueAttributes(self.name, visible, in_flight, delayed, oldest)

    def _counts(self) -> tuple[int, int, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        with self._backend.guard(f"read the attributes of SQS queue {self.name!r}"):
            attrs = self._client.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        visible, in_flight, delayed = (int(attrs.get(n, 0)) for n in names)
        return visible, in_flight, delayed

    def _oldest_age(self) -> float | None:
        now = self._backend.clock.now()
        cached = self._age_cache
        if cached is None or not 0 <= now - cached[0] < AGE_CACHE_SECONDS:
            cached = self._age_cache = (now, self._age_from_cloudwatch(now))
        age = cached[1]
        if age is None and self._backend.peek_for_oldest_age:
            age = self._age_from_peek(now)
        return age

    def _age_from_cloudwatch(self, now: float) -> float | None:
        end = dt.datetime.fromtimestamp(now, tz=dt.UTC)
        try:
            response = self._backend.cloudwatch.get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": "age",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SQS",
                                "MetricName": "ApproximateAgeOfOldestMessage",
                                "Dimensions": [{"Name": "QueueName", "Value": self.name}],
                            },
                            "Period": 60,
                            "Stat": "Maximum",
                        },
                    }
                ],
                StartTime=end - dt.timedelta(minutes=10),
                EndTime=end,
                ScanBy="TimestampDescending",
            )
        except (ClientError, BotoCoreError) as exc:
            log.debug("CloudWatch unreachable for the age of %s: %s", self.name, describe(exc))
            return None
        values = [v for r in response.get("MetricDataResults", []) for v in r.get("Values", [])]
        return float(values[0]) if values else None

    def _age_from_peek(self, now: float) -> float | None:
        with self._backend.guard(f"peek at SQS queue {self.name!r}"):
            response = self._client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=1,  # FIFO hands out the oldest receivable message first
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["SentTimestamp"],
            )
        sent = [int(m["Attributes"]["SentTimestamp"]) for m in response.get("Messages", []) if "Attributes" in m]
        return max(0.0, now - min(sent) / 1000.0) if sent else None

    def purge(self) -> None:
        """``PurgeQueue``: SQS allows one per queue every 60 seconds."""
        try:
            with self._backend.guard(f"purge SQS queue {self.name!r}"):
                self._client.purge_queue(QueueUrl=self.url)
        except QueueError as exc:
            if isinstance(exc.__cause__, ClientError) and "PurgeQueueInProgress" in " ".join(error_codes(exc.__cause__)):
                raise QueueUnavailableError(
                    f"SQS queue {self.name!r} was purged less than 60 seconds ago; retry in a minute"
                ) from exc
            raise


# -- helpers -----------------------------------------------------------------------


def _redrive_policy(attributes: Mapping[str, str]) -> dict[str, Any] | None:
    raw = attributes.get("RedrivePolicy")
    if not raw:
        return None
    policy = json.loads(raw)
    return policy if isinstance(policy, dict) and policy.get("deadLetterTargetArn") else None


def _config_from_attributes(attributes: Mapping[str, str], base: QueueConfig | None) -> QueueConfig:
    base = base or QueueConfig()
    redrive = _redrive_policy(attributes)

    def number(name: str, default: float) -> float:
        raw = attributes.get(name)
        return float(raw) if raw not in (None, "") else default

    return QueueConfig(
        fifo=attributes.get("FifoQueue", "false") == "true",
        visibility_timeout=number("VisibilityTimeout", base.visibility_timeout),
        max_receive_count=int(redrive["maxReceiveCount"]) if redrive else base.max_receive_count,
        retention_seconds=number("MessageRetentionPeriod", base.retention_seconds),
        dedup_window_seconds=base.dedup_window_seconds,
        content_based_dedup=attributes.get("ContentBasedDeduplication", "false") == "true",
        # SQS now accepts up to 1 MiB, but the seam (and the embedded backend) stays at 256 KiB
        max_message_bytes=min(int(number("MaximumMessageSize", base.max_message_bytes)), MAX_MESSAGE_BYTES),
        delay_seconds=number("DelaySeconds", base.delay_seconds),
        receive_wait_seconds=number("ReceiveMessageWaitTimeSeconds", base.receive_wait_seconds),
    )


def _decode_attributes(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    decoded: dict[str, str] = {}
    for name, value in raw.items():
        if "StringValue" in value:
            decoded[name] = str(value["StringValue"])
        elif "BinaryValue" in value:  # not sent by cv-analytics; shown base64-encoded
            data = value["BinaryValue"]
            decoded[name] = base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode()
    return decoded


def _message_size(message: OutgoingMessage) -> int:
    # SQS counts the body, and each attribute's name, data type and value
    return len(message.body.encode()) + sum(
        len(k.encode()) + len("String") + len(v.encode()) for k, v in message.attributes.items()
    )


def _is_too_long(code: str, text: str) -> bool:
    return code in ("MessageTooLong", "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong") or (
        "shorter than" in text or "too long" in text.lower()
    )


def _refused(exc: ClientError) -> SendOutcome:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "InvalidParameterValue")
    text = str(error.get("Message") or code)
    return SendOutcome(0, error_code="MessageTooLong" if _is_too_long(code, text) else code, error=text, sender_fault=True)
