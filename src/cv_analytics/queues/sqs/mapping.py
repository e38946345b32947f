"""SQS limits and error codes, and the mapping between SQS's attributes and the seam's types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...boto.clients import ClientError
from ..base import MAX_MESSAGE_BYTES, OutgoingMessage, QueueConfig, SendOutcome

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
