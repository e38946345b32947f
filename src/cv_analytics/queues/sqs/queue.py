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

import contextlib
import json
import logging
import math
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...boto.clients import ClientError, error_codes
from ...exceptions import QueueError, QueueUnavailableError, ReceiptHandleError
from ..lambda_records import decode_message_attributes, message_from_fields
from ..base import (
    FAILURE_REASON_ATTRIBUTE,
    MAX_WAIT_SECONDS,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    Message,
    OutgoingMessage,
    Queue,
    QueueConfig,
    SendOutcome,
    dead_letter_attributes,
    request_batches,
)
from .admin import SQSQueueAdmin
from .mapping import (
    _ENTRY_ERRORS,
    _STALE_HANDLE,
    _SYSTEM_ATTRIBUTES,
    MAX_MESSAGE_ATTRIBUTES,
    ORIGIN_ATTRIBUTE,
    _config_from_attributes,
    _is_too_long,
    _message_size,
    _refused,
)

if TYPE_CHECKING:
    from .backend import SQSQueueBackend

log = logging.getLogger(__name__)


class SQSQueue(SQSQueueAdmin, Queue):
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
        # one SQS-fields -> Message mapping, shared with the Lambda event's records (lambda_records)
        system = dict(raw.get("Attributes", {}))
        attributes = decode_message_attributes(raw.get("MessageAttributes", {}))
        message_id = str(raw["MessageId"])
        origin = attributes.pop(ORIGIN_ATTRIBUTE, None)
        if origin is not None:  # a copy we dead-lettered: show the original's identity
            with contextlib.suppress(ValueError, KeyError, TypeError):
                known = json.loads(origin)
                message_id = str(known["id"])
                system["SentTimestamp"], system["MessageDeduplicationId"] = int(known["sent"]), known.get("dedup")
        elif self._source is not None and FAILURE_REASON_ATTRIBUTE not in attributes:
            source = self._source
            attributes[FAILURE_REASON_ATTRIBUTE] = (
                f"received {source.config.max_receive_count} times without being deleted: moved here by SQS "
                f"(maxReceiveCount {source.config.max_receive_count} of {source.name})"
            )
            attributes.setdefault(SOURCE_QUEUE_ATTRIBUTE, source.name)
            attributes.setdefault(RECEIVE_COUNT_ATTRIBUTE, str(source.config.max_receive_count))
        return message_from_fields(message_id, raw["ReceiptHandle"], str(raw["Body"]), system, attributes)

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
