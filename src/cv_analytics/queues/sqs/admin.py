"""Whole-queue operations on SQS: peek, redrive, attributes (and the oldest message's age), purge."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

from ...boto.clients import BotoCoreError, ClientError, describe, error_codes, is_unavailable
from ...exceptions import QueueError, QueueUnavailableError, ReceiptHandleError
from ..base import MAX_BATCH_SIZE, Message, QueueAttributes
from .mapping import AGE_CACHE_SECONDS, PEEK_VISIBILITY_SECONDS

if TYPE_CHECKING:
    from .queue import SQSQueue  # noqa: F401 - the class this is mixed into

log = logging.getLogger(__name__)


class SQSQueueAdmin:
    """Mixed into :class:`~cv_analytics.queues.sqs.queue.SQSQueue`: what works on the queue as a whole."""


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

    def redrive(self, max_messages: int | None = None, *, message_ids: Collection[str] | None = None) -> int:
        """Move the dead-letter queue's messages back here.

        On AWS, without ``max_messages``: an asynchronous ``StartMessageMoveTask``;
        returns how many messages the dead-letter queue held when it started.
        Otherwise (a count or ids asked for, or the operation unavailable) the
        base class's receive–send–delete, which returns how many it moved.
        """
        dlq = self.require_dead_letter_queue("redrive")
        if max_messages is None and message_ids is None:
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
        return super().redrive(max_messages, message_ids=message_ids)

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
