"""Lambda's SQS event records <-> the queue seam's :class:`~cv_analytics.queues.base.Message`, once.

Every Lambda handler fed by an SQS event source mapping reads its records
here (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html). The system
attributes (receive count, sent time, group and deduplication ids) map as the
SQS backend maps ``ReceiveMessage``'s answer, through :func:`message_from_fields`;
message attributes decode through :func:`decode_message_attributes`, which
reads both spellings (Lambda's ``stringValue``, the SQS API's ``StringValue``).
No boto3 here: importing a Lambda handler stays cheap.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .base import Message
from .batch import UnreadableRecord

#: System attributes a message is built from (the names SQS and Lambda both use).
RECEIVE_COUNT = "ApproximateReceiveCount"
SENT_TIMESTAMP = "SentTimestamp"
GROUP_ID = "MessageGroupId"
DEDUP_ID = "MessageDeduplicationId"


def decode_message_attributes(raw: Mapping[str, Any]) -> dict[str, str]:
    """Message attributes as ``{name: text}``: string values as they are, binary ones base64-encoded.

    Reads the SQS API's ``{"StringValue": ..., "BinaryValue": b"..."}`` and
    Lambda's ``{"stringValue": ..., "binaryValue": "<base64>"}``; anything else is left out.
    """
    decoded: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(value, Mapping):
            continue
        text = value.get("StringValue", value.get("stringValue"))
        if text is not None:
            decoded[str(name)] = str(text)
            continue
        if value.get("BinaryValue") is not None:  # bytes from the SQS API
            data = value["BinaryValue"]
            decoded[str(name)] = base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode()
        elif value.get("binaryValue") is not None:  # already base64 in Lambda's event
            decoded[str(name)] = str(value["binaryValue"])
    return decoded


def message_from_fields(
    message_id: str, receipt_handle: str, body: Any, system: Mapping[str, Any], attributes: Mapping[str, str]
) -> Message:
    """A :class:`Message` from SQS's fields; raises ``TypeError``/``ValueError`` for fields no SQS sends."""
    if not isinstance(body, str):
        raise TypeError(f"body is {type(body).__name__}, not a string")
    return Message(
        message_id=str(message_id),
        receipt_handle=str(receipt_handle),
        body=body,
        group_id=system.get(GROUP_ID),
        dedup_id=system.get(DEDUP_ID),
        receive_count=int(system.get(RECEIVE_COUNT, 1)),
        sent_at=int(system.get(SENT_TIMESTAMP, 0)) / 1000.0,
        attributes=dict(attributes),
    )


def message_of_record(record: Mapping[str, Any]) -> Message:
    """One record of Lambda's SQS event as a :class:`Message`; raises for a record Lambda would never send."""
    system = record.get("attributes") or {}
    if not isinstance(system, Mapping):
        raise TypeError("attributes is not an object")
    raw_attributes = record.get("messageAttributes") or {}
    if not isinstance(raw_attributes, Mapping):
        raise TypeError("messageAttributes is not an object")
    return message_from_fields(
        record["messageId"], record["receiptHandle"], record["body"], system, decode_message_attributes(raw_attributes)
    )


def record_of_message(message: Message, *, source_arn: str, region: str) -> dict[str, Any]:
    """The record Lambda would pass for ``message`` (local runs and tests of a handler)."""
    system: dict[str, str] = {
        RECEIVE_COUNT: str(message.receive_count),
        SENT_TIMESTAMP: str(round(message.sent_at * 1000)),
    }
    if message.group_id is not None:
        system[GROUP_ID] = message.group_id
    if message.dedup_id is not None:
        system[DEDUP_ID] = message.dedup_id
    return {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": system,
        "messageAttributes": {
            name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
            for name, value in message.attributes.items()
        },
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn,
        "awsRegion": region,
    }


def records_of(event: Any) -> list[Mapping[str, Any]]:
    """The records of an SQS event, or none for anything else."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    return [r for r in records if isinstance(r, Mapping)] if isinstance(records, list) else []


def by_source(records: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str | None, list[Mapping[str, Any]]]]:
    """Records grouped by the queue they came from (``eventSourceARN``), each in batch order."""
    groups: dict[str | None, list[Mapping[str, Any]]] = {}
    for record in records:
        arn = record.get("eventSourceARN")
        groups.setdefault(str(arn) if arn else None, []).append(record)
    yield from groups.items()


def messages_of(records: Sequence[Mapping[str, Any]]) -> tuple[list[Message | UnreadableRecord], list[Any]]:
    """Records as messages, in order; a record that cannot be read is an :class:`UnreadableRecord`
    (the engine retries it and holds its group). Also returns the records without a ``messageId``:
    they cannot even be named in a partial batch response."""
    messages: list[Message | UnreadableRecord] = []
    nameless: list[Any] = []
    for record in records:
        if not record.get("messageId"):
            nameless.append(record)
            continue
        try:
            messages.append(message_of_record(record))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            system = record.get("attributes")
            group = system.get(GROUP_ID) if isinstance(system, Mapping) else None
            messages.append(
                UnreadableRecord(str(record["messageId"]), None if group is None else str(group),
                                 f"malformed SQS record: {exc!r}")
            )  # fmt: skip
    return messages, nameless
