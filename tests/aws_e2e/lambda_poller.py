"""What Lambda's SQS event source mapping does, done in-process against moto.

moto would run a mapped function in Docker; here :class:`EventSourceMapping`
does the mapping's job with boto3, request for request: ``ReceiveMessage``
(up to 10, every system and message attribute), the event in the exact shape
Lambda passes to the function
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#example-standard-queue-message-event),
the handler called with it, then one ``DeleteMessageBatch`` of every message
that is not in the answer's ``batchItemFailures``. Failed messages are left
alone, to come back after their visibility timeout. Shared by the end-to-end
tests and ``bench/aws_cost_bench.py`` (which counts the requests it makes,
as the mapping's are billed too).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: What Lambda reads per receive for a FIFO queue: at most 10 messages.
BATCH_SIZE = 10

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object the handlers read."""

    function_name: str = "cv-analytics-process-analytics"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Poll:
    """One receive and what became of it."""

    event: dict[str, Any]
    answer: Mapping[str, Any]
    #: message ids the handler reported failed (left in the queue)
    failed: list[str]
    #: message ids deleted as Lambda would (the rest of the batch)
    deleted: list[str]
    #: deletes SQS refused, e.g. of a message the handler already moved to the dead-letter queue
    delete_failures: list[dict[str, Any]]


class EventSourceMapping:
    """An SQS → Lambda event source mapping (batch size ≤ 10, ReportBatchItemFailures) driven by hand."""

    def __init__(
        self, sqs: Any, queue_url: str, *, batch_size: int = BATCH_SIZE, visibility_timeout: int | None = None
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.batch_size = batch_size
        #: None: the queue's own visibility timeout, as Lambda uses
        self.visibility_timeout = visibility_timeout
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.arn: str = attributes["QueueArn"]
        self.region: str = self.arn.split(":")[3]

    def receive(self) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": self.batch_size,
            "WaitTimeSeconds": 0,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self.visibility_timeout is not None:
            request["VisibilityTimeout"] = self.visibility_timeout
        return list(self.sqs.receive_message(**request).get("Messages", []))

    def event_of(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda would pass for these received messages."""
        return {"Records": [self._record(m) for m in messages]}

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: {
                    **({"stringValue": value["StringValue"]} if "StringValue" in value else {}),
                    **({"binaryValue": value["BinaryValue"]} if "BinaryValue" in value else {}),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self.region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def deliver(self, messages: list[dict[str, Any]], handler: Handler, context: Any = None) -> Poll:
        """Invoke ``handler`` with these messages, then delete what it did not report failed."""
        event = self.event_of(messages)
        answer = handler(event, context if context is not None else LambdaContext())
        failed = [str(item["itemIdentifier"]) for item in answer.get("batchItemFailures", [])]
        done = [m for m in messages if m["MessageId"] not in failed]
        delete_failures: list[dict[str, Any]] = []
        if done:
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
            delete_failures = list(response.get("Failed", []))
        return Poll(event, answer, failed, [m["MessageId"] for m in done], delete_failures)

    def poll(self, handler: Handler, context: Any = None) -> Poll | None:
        """One receive and invocation; None when nothing was receivable."""
        messages = self.receive()
        if not messages:
            return None
        return self.deliver(messages, handler, context)

    def drain(self, handler: Handler, *, max_polls: int = 10_000) -> list[Poll]:
        """Poll until a receive comes back empty."""
        polls: list[Poll] = []
        for _ in range(max_polls):
            result = self.poll(handler)
            if result is None:
                return polls
            polls.append(result)
        raise AssertionError(f"the queue did not drain in {max_polls} polls")
