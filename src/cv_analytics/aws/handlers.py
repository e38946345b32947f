"""AWS Lambda entry points: the analytics processor and the weekly reporter.

``process_analytics(event, context)``
    Fed by the analytics queue's SQS event source mapping (batches of up to
    10, ``ReportBatchItemFailures``; see ``infra/template.yaml``). Each record
    becomes a :class:`~cv_analytics.queues.base.Message` and the batch goes
    through the same :class:`~cv_analytics.processor.batch.BatchProcessor` the
    embedded worker uses. Returns the partial batch response
    ``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}``: Lambda
    deletes the other messages
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
    The FIFO rule is the processor's: once a message of a group fails, the rest
    of that group in the batch is returned as failed, unprocessed. Poison
    messages are moved to the dead-letter queue, with their reason, by the
    processor on their last receive; the queue used for that is the one the
    record came from (its ``eventSourceARN``; ``AWS_SQS_URL`` when a record
    carries none).

``weekly_report(event, context)``
    Fed by the EventBridge schedule. Sends the report of the ISO week that
    ended before the event's ``time`` (not the wall clock, so a delayed or
    retried invocation reports the right week) through SES, once per week and
    recipient: a second invocation for the same week sends nothing and answers
    ``already_sent``; a failed send records nothing and raises, so Lambda's
    retries (two, for an asynchronous invocation) and the next run try again.
    ``{"week": "2026-W47"}`` as the event sends that week instead (a manual
    rerun with ``aws lambda invoke``).

Warm state. Queues, store and the SES client are made on a container's first
invocation, not at import (importing this module imports neither boto3 nor
pydantic), and reused by the invocations that follow: building boto3 clients
and reading queue attributes costs tens of milliseconds and several requests
that a warm invocation should not pay again. :func:`configure` replaces what
the next first invocation builds from (the environment, a clock, a request
counter): for tests, benchmarks and local runs.

Orphan sweep. A query whose response never comes (or the reverse) is turned
into an ``unanswered`` (``orphan_response``) interaction by
:meth:`~cv_analytics.stores.base.Store.sweep_orphans` once it has waited
``CV_ANALYTICS_ORPHAN_TIMEOUT`` (900 s). The processor runs it after a batch,
at most every ``CV_ANALYTICS_SWEEP_INTERVAL`` seconds (300) per container and
on a container's first invocation: a lightly used function lives in
short-lived containers, and waiting a whole interval in each would mean never
sweeping. It is a scan of the events table, which holds only unmatched events.
The processor's role can do it; the reporter's cannot (it reads interactions
only), so events still pending when traffic stops are closed by the next
invocation, in their own week.

Logging. One JSON object per line on stdout (which Lambda sends to CloudWatch
Logs as is): per invocation, the counts of what happened (records, correlated,
pending, duplicates, failed, skipped, dead-lettered, swept...), the duration
and whether it was a cold start; one line per failed record with its reason.
CloudWatch Logs Insights can then query them by field.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..clock import Clock, SystemClock
from ..wiring import PREFIX, Settings
from ..exceptions import ConfigurationError, CVAnalyticsError

if TYPE_CHECKING:
    from ..processor.batch import BatchResult
    from ..queues.base import Message, Queue
    from ..queues.sqs import SQSQueue, SQSQueueBackend
    from ..reporting.delivery import Deliverer
    from ..stores.base import Store
    from ..boto.metering import RequestCounter

__all__ = ["configure", "process_analytics", "reset", "weekly_report"]

#: Seconds between orphan sweeps in one container.
SWEEP_INTERVAL_VARIABLE = f"{PREFIX}SWEEP_INTERVAL"
DEFAULT_SWEEP_INTERVAL_SECONDS = 300.0
#: A sweep is not started with less time than this left in the invocation: the batch's answer matters more.
SWEEP_MIN_REMAINING_MS = 10_000
#: The reporter sends by SES unless this names another channel (``file``, ``smtp``).
REPORT_CHANNEL_VARIABLE = f"{PREFIX}REPORT_CHANNEL"
#: Logger of the invocation lines (JSON on stdout, not propagated to Lambda's text handler).
LOGGER_NAME = "cv_analytics.aws.handlers"
#: A failure reason is cut to this many characters in the log.
MAX_LOGGED_REASON = 500

SQSEvent = Mapping[str, Any]
BatchResponse = dict[str, list[dict[str, str]]]


# -- warm state -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Overrides:
    env: Mapping[str, str] | None = None
    clock: Clock | None = None
    request_counter: RequestCounter | None = None

    def settings(self) -> Settings:
        return Settings.from_env(self.env)


_lock = threading.Lock()
_overrides = _Overrides()
_processor: _ProcessorState | None = None
_reporter: _ReporterState | None = None


def configure(
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    request_counter: RequestCounter | None = None,
) -> None:
    """Drop the warm state; the next invocation builds it from these.

    ``env`` replaces ``os.environ`` as the source of settings, ``clock`` the
    system clock (orphan timeouts, sweep interval, pending TTL), and
    ``request_counter`` counts every AWS request the handlers make. With no
    arguments this is :func:`reset`.
    """
    global _overrides, _processor, _reporter
    with _lock:
        for state in (_processor, _reporter):
            if state is not None:
                state.close()
        _overrides = _Overrides(env, clock, request_counter)
        _processor = _reporter = None


def reset() -> None:
    """Forget the warm state and any :func:`configure` overrides, as a new container would."""
    configure()


class _ProcessorState:
    """What one container's processor invocations share."""

    def __init__(self, overrides: _Overrides) -> None:
        # Imported here, not at module level: they pull in boto3 and pydantic.
        from ..wiring import open_store
        from ..queues.sqs import SQSQueueBackend

        self.settings = overrides.settings()
        self.clock: Clock = overrides.clock or SystemClock()
        # The SQS backend itself, not the configured queue URL: an event names its queue by ARN,
        # which only the SQS backend can resolve (and dead-lettering must go to that queue's DLQ).
        self.backend: SQSQueueBackend = SQSQueueBackend(
            queue_urls=self.settings.sqs_queue_urls,
            region=self.settings.aws_region,
            endpoint_url=self.settings.aws_endpoint_url,
            request_counter=overrides.request_counter,
            clock=self.clock,
        )
        self.store: Store = open_store(self.settings, clock=self.clock)
        _count_requests_of(self.store, overrides.request_counter)
        self.sweep_interval = _seconds(self.settings.env, SWEEP_INTERVAL_VARIABLE, DEFAULT_SWEEP_INTERVAL_SECONDS)
        self.next_sweep = self.clock.now()  # the first invocation sweeps (see the module docstring)
        self.invocations = 0
        self._queues: dict[str, SQSQueue] = {}

    def queue_for(self, source_arn: str | None) -> SQSQueue:
        """The queue a record came from, made once per container."""
        key = source_arn or ""
        queue = self._queues.get(key)
        if queue is None:
            if source_arn:
                queue = self.backend.queue_by_url(self._url_of(source_arn))
            else:
                from ..wiring import ANALYTICS_QUEUE

                queue = self.backend.queue(ANALYTICS_QUEUE)
            self._queues[key] = queue
        return queue

    def _url_of(self, arn: str) -> str:
        # arn:aws:sqs:<region>:<account>:<name>
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise ConfigurationError(f"eventSourceARN {arn!r} is not an SQS queue ARN: this handler takes SQS events")
        account, name = parts[4], parts[5]
        # The configured URL when it names this queue: no GetQueueUrl request (nor permission) needed.
        for url in self.settings.sqs_queue_urls.values():
            if url.rstrip("/").rsplit("/", 1)[-1] == name:
                return url
        with self.backend.guard(f"look up SQS queue {name!r}"):
            response = self.backend.client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        return str(response["QueueUrl"])

    def close(self) -> None:
        self.backend.close()
        self.store.close()


class _ReporterState:
    """What one container's reporter invocations share."""

    def __init__(self, overrides: _Overrides) -> None:
        from ..wiring import open_store

        self.settings = overrides.settings()
        self.clock: Clock = overrides.clock or SystemClock()
        self.request_counter = overrides.request_counter
        self.store: Store = open_store(self.settings, clock=self.clock)
        _count_requests_of(self.store, overrides.request_counter)
        self.channel = (self.settings.env.get(REPORT_CHANNEL_VARIABLE) or "ses").strip().lower()
        self._ses_client: Any = None

    def deliverer(self) -> Deliverer:
        """A deliverer for this invocation (fresh, so its message ids are this invocation's), sharing the client."""
        if self.channel != "ses":
            from ..reporting.delivery import open_deliverer

            return open_deliverer(self.settings)
        from ..reporting.ses import SES_REGION_VARIABLE, SESDeliverer, make_ses_client

        region = self.settings.env.get(SES_REGION_VARIABLE) or self.settings.aws_region
        if self._ses_client is None:
            self._ses_client = make_ses_client(
                region=region, endpoint_url=self.settings.aws_endpoint_url, request_counter=self.request_counter
            )
        return SESDeliverer.from_settings(self.settings, client=self._ses_client, region=region)

    def close(self) -> None:
        self.store.close()
        if self._ses_client is not None:
            self._ses_client.close()


def _processor_state() -> _ProcessorState:
    global _processor
    with _lock:
        if _processor is None:
            _processor = _ProcessorState(_overrides)
        return _processor


def _reporter_state() -> _ReporterState:
    global _reporter
    with _lock:
        if _reporter is None:
            _reporter = _ReporterState(_overrides)
        return _reporter


def _count_requests_of(store: Store, counter: RequestCounter | None) -> None:
    client = getattr(store, "client", None)  # the DynamoDB store's boto3 client; an SQLite store has none
    if counter is not None and client is not None:
        counter.attach(client)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative, got {raw!r}")
    return value


# -- the processor ---------------------------------------------------------------------


def process_analytics(event: SQSEvent, context: Any = None) -> BatchResponse:
    """Lambda handler of the analytics queue's SQS event source: record the batch, report the failures.

    One bad record never fails the batch: it is reported in
    ``batchItemFailures`` (and dead-lettered with its reason on its last
    receive) while the others are recorded. The handler raises only when it
    cannot work at all (no queue or store configured, AWS unreachable while
    starting): Lambda then retries the whole batch, which is safe because
    recording is idempotent, and the function's Errors alarm fires.
    """
    try:
        return _process_analytics(event, context)
    except Exception as exc:
        _logger().error(
            "analytics batch not processed; Lambda will retry the whole batch",
            exc_info=not isinstance(exc, CVAnalyticsError),  # a traceback only for the unforeseen
            extra={"fields": {**_context_fields(context), "error": str(exc)[: 2 * MAX_LOGGED_REASON]}},
        )
        raise


def _process_analytics(event: SQSEvent, context: Any) -> BatchResponse:
    started = time.perf_counter()
    state = _processor_state()
    cold_start = state.invocations == 0
    state.invocations += 1
    records = list(event.get("Records") or []) if isinstance(event, Mapping) else []
    tally: Counter[str] = Counter(records=len(records))
    failures: list[str] = []
    for source_arn, batch in _by_source(records):
        queue = state.queue_for(source_arn)
        messages, rejected = _messages_of(batch)
        for message_id, status, reason in rejected:
            tally[status] += 1
            failures.append(message_id)
            _log_failure(context, message_id, reason, queue.name, status)
        if messages:
            result = _process(queue, state.store, messages)
            _count(tally, result)
            failures += [item.message.message_id for item in result.to_retry]
            for item in result.to_retry:
                _log_failure(context, item.message.message_id, item.reason or "", queue.name, item.status.value)
            tally["visibility_resets"] += _release_skipped(queue, result)
    swept = _sweep_if_due(state, context)
    fields: dict[str, Any] = {
        **_context_fields(context),
        "coldStart": cold_start,
        "records": tally["records"],
        "succeeded": tally["succeeded"],
        "correlated": tally["correlated"],
        "pending": tally["pending"],
        "duplicates": tally["duplicates"],
        "failed": tally["failed"],
        "skipped": tally["skipped"],
        "deadLettered": tally["dead_lettered"],
        "malformed": tally["malformed"],
        "batchItemFailures": len(failures),
        "visibilityResets": tally["visibility_resets"],
        "durationMs": round((time.perf_counter() - started) * 1000, 1),
    }
    if swept is not None:
        fields["swept"] = swept
    _logger().info("processed analytics batch", extra={"fields": fields})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def _by_source(records: Sequence[Any]) -> Iterator[tuple[str | None, list[Any]]]:
    """Records grouped by the queue they came from, each group in batch order (one queue, in practice)."""
    groups: dict[str | None, list[Any]] = {}
    for record in records:
        arn = record.get("eventSourceARN") if isinstance(record, Mapping) else None
        groups.setdefault(str(arn) if arn else None, []).append(record)
    yield from groups.items()


def _messages_of(records: Sequence[Any]) -> tuple[list[Message], list[tuple[str, str, str]]]:
    """Records as queue messages, and (messageId, status, reason) for those that cannot be processed now.

    A record Lambda would never send (no body, a receive count that is not a
    number) fails alone, and so does every later record of its message group,
    unprocessed, to keep the group's order. A record without a messageId
    cannot even be named in the response: it is logged and left out.
    """
    messages: list[Message] = []
    rejected: list[tuple[str, str, str]] = []
    failed_groups: set[str] = set()
    for record in records:
        if not isinstance(record, Mapping) or not record.get("messageId"):
            _logger().error(
                "an SQS record without a messageId cannot be reported as failed; ignoring it",
                extra={"fields": {"record": str(record)[:MAX_LOGGED_REASON]}},
            )
            continue
        message_id = str(record["messageId"])
        attributes = record.get("attributes")
        group = attributes.get("MessageGroupId") if isinstance(attributes, Mapping) else None
        if group is not None and group in failed_groups:
            rejected.append((message_id, "skipped", f"an earlier message of group {group!r} failed"))
            continue
        try:
            messages.append(_message_of(record))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            rejected.append((message_id, "malformed", f"malformed SQS record: {exc!r}"))
            if group is not None:
                failed_groups.add(str(group))
    return messages, rejected


def _message_of(record: Mapping[str, Any]) -> Message:
    """One record of Lambda's SQS event as the queue seam's message."""
    from ..queues.base import Message

    attributes = record.get("attributes") or {}
    body = record["body"]
    if not isinstance(body, str):
        raise TypeError(f"body is {type(body).__name__}, not a string")
    return Message(
        message_id=str(record["messageId"]),
        receipt_handle=str(record["receiptHandle"]),
        body=body,
        group_id=attributes.get("MessageGroupId"),
        dedup_id=attributes.get("MessageDeduplicationId"),
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
        sent_at=int(attributes.get("SentTimestamp", 0)) / 1000.0,
        attributes=_message_attributes(record.get("messageAttributes") or {}),
    )


def _message_attributes(raw: Mapping[str, Any]) -> dict[str, str]:
    # Lambda spells message attributes in camelCase: {"name": {"stringValue": ..., "dataType": "String"}}
    decoded: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(value, Mapping):
            continue
        if value.get("stringValue") is not None:
            decoded[str(name)] = str(value["stringValue"])
        elif value.get("binaryValue") is not None:  # already base64 in the event
            decoded[str(name)] = str(value["binaryValue"])
    return decoded


def _process(queue: Queue, store: Store, messages: list[Message]) -> BatchResult:
    """The processor's result; should it raise (a bug, SQS failing while dead-lettering), the
    messages are processed one by one so that only the ones that trip it fail."""
    from ..processor.batch import BatchProcessor, BatchResult, ItemResult, Status

    processor = BatchProcessor(queue, store)
    try:
        return processor.process(messages)
    except Exception:  # noqa: BLE001 - isolate whatever it was to the messages that cause it
        _logger().exception(
            "processing the batch raised; processing its messages one by one",
            extra={"fields": {"queue": queue.name, "messages": len(messages)}},
        )
    items: list[ItemResult] = []
    failed_groups: set[str] = set()
    for message in messages:
        if message.group_id is not None and message.group_id in failed_groups:
            items.append(
                ItemResult(message, Status.SKIPPED, f"an earlier message of group {message.group_id!r} failed")
            )
            continue
        try:
            (item,) = processor.process([message]).items
        except Exception as exc:  # noqa: BLE001 - this message alone fails
            item = ItemResult(message, Status.FAILED, f"processing error: {exc!r}")
        items.append(item)
        if item.status is Status.FAILED and message.group_id is not None:
            failed_groups.add(message.group_id)
    return BatchResult(items)


def _count(tally: Counter[str], result: BatchResult) -> None:
    from ..stores.models import RecordOutcome

    for item in result.items:
        tally[item.status.value] += 1
        if item.outcome in (RecordOutcome.CORRELATED, RecordOutcome.COMPLETED_LATE):
            tally["correlated"] += 1
        elif item.outcome is RecordOutcome.PENDING:
            tally["pending"] += 1
        elif item.outcome is RecordOutcome.DUPLICATE:
            tally["duplicates"] += 1


def _release_skipped(queue: Queue, result: BatchResult) -> int:
    """Make the messages skipped behind a failed one visible again now; returns how many.

    The failed message itself is visible again already (the processor's
    ``queue.fail``), but SQS hands out nothing more of a FIFO group while any
    of its messages is in flight: left alone, the skipped ones would hold the
    group back for the whole visibility timeout (300 s). Messages that failed
    because the store was unavailable are left to that timeout, a natural backoff.
    """
    from ..exceptions import QueueError
    from ..processor.batch import Status

    released = 0
    for item in result.with_status(Status.SKIPPED):
        try:
            queue.change_visibility(item.message.receipt_handle, 0)
            released += 1
        except QueueError as exc:  # stale handle, SQS unavailable: the visibility timeout does it later
            _logger().warning(
                "could not make a skipped message visible again",
                extra={"fields": {"messageId": item.message.message_id, "error": str(exc)[:MAX_LOGGED_REASON]}},
            )
    return released


def _sweep_if_due(state: _ProcessorState, context: Any) -> dict[str, int] | None:
    now = state.clock.now()
    if now < state.next_sweep:
        return None
    remaining = _remaining_ms(context)
    if remaining is not None and remaining < SWEEP_MIN_REMAINING_MS:
        return None  # the next invocation sweeps
    state.next_sweep = now + state.sweep_interval
    try:
        swept = state.store.sweep_orphans(state.settings.orphan_timeout_seconds)
    except Exception as exc:  # noqa: BLE001
        # the batch is recorded already: failing the invocation would only redeliver it
        _logger().exception("orphan sweep failed; the next one retries", extra={"fields": {"error": str(exc)}})
        return None
    return {"unanswered": swept.unanswered, "orphanResponses": swept.orphan_responses}


def _log_failure(context: Any, message_id: str, reason: str, queue: str, status: str = "failed") -> None:
    _logger().warning(
        "analytics message not processed",
        extra={
            "fields": {
                **_context_fields(context),
                "messageId": message_id,
                "queue": queue,
                "status": status,
                "reason": reason[:MAX_LOGGED_REASON],
            }
        },
    )


# -- the reporter ----------------------------------------------------------------------


def weekly_report(event: Mapping[str, Any] | None, context: Any = None) -> dict[str, Any]:
    """Lambda handler of the weekly schedule: send last week's report by SES, once.

    Returns ``{"week", "status" ("sent" or "already_sent"), "messageId",
    "channel", "deliveries": [...]}``. Raises
    :class:`~cv_analytics.exceptions.ReportDeliveryError` when a recipient
    could not be sent the report (nothing is recorded for that recipient),
    :class:`~cv_analytics.exceptions.ConfigurationError` when ``SENDER_EMAIL``,
    ``RECIPIENT_EMAIL`` or the event's time is missing or malformed.
    """
    started = time.perf_counter()
    week: str | None = None
    try:
        state = _reporter_state()
        week = _report_week(event, state.clock)
        answer = _send_report(state, week)
    except Exception as exc:
        from ..reporting.delivery import DeliveryStatus

        delivered = [r.recipient for r in getattr(exc, "results", []) if r.status is DeliveryStatus.SENT]
        _logger().error(
            "weekly report not delivered",
            exc_info=not isinstance(exc, CVAnalyticsError),
            extra={"fields": {**_context_fields(context), "week": week, "delivered": delivered, "error": str(exc)}},
        )
        raise
    _logger().info(
        "weekly report",
        extra={
            "fields": {
                **_context_fields(context),
                **{k: v for k, v in answer.items() if k != "deliveries"},
                "recipients": len(answer["deliveries"]),
                "sent": sum(d["status"] == "sent" for d in answer["deliveries"]),
                "durationMs": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )
    return answer


def _send_report(state: _ReporterState, week: str) -> dict[str, Any]:
    from ..reporting.delivery import DeliveryStatus, addresses, send_weekly_report

    sender, recipients = addresses(state.settings)
    deliverer = state.deliverer()
    message_ids: dict[str, str] = getattr(deliverer, "message_ids", {})
    results = send_weekly_report(state.store, week, deliverer, sender=sender, recipients=recipients, clock=state.clock)
    deliveries = [
        {
            "recipient": r.recipient,
            "status": r.status.value,
            "channel": r.channel,
            "sentAt": r.sent_at,
            "messageId": message_ids.get(r.recipient) if r.status is DeliveryStatus.SENT else None,
        }
        for r in results
    ]
    sent = [d for d in deliveries if d["status"] == DeliveryStatus.SENT.value]
    return {
        "week": week,
        "status": (DeliveryStatus.SENT if sent else DeliveryStatus.ALREADY_SENT).value,
        "messageId": sent[0]["messageId"] if sent else None,
        "channel": deliverer.channel,
        "deliveries": deliveries,
    }


def _report_week(event: Mapping[str, Any] | None, clock: Clock) -> str:
    """The week to report: ``event["week"]`` if given, else the last one complete at the event's time."""
    from ..reporting.weeks import last_complete_week, parse_week

    event = event if isinstance(event, Mapping) else {}
    if event.get("week"):
        return parse_week(str(event["week"]))
    raw = event.get("time")
    if not raw:
        return last_complete_week(clock.now())  # a test invocation from the console: relative to now
    try:
        when = dt.datetime.fromisoformat(str(raw))  # Python 3.11+ reads the trailing Z
    except ValueError:
        raise ConfigurationError(
            f"the scheduled event's time {raw!r} is not an ISO 8601 time such as 2026-11-23T07:00:00Z"
        ) from None
    return last_complete_week(when)


# -- logging -----------------------------------------------------------------------------


class JsonLinesHandler(logging.Handler):
    """Writes each record as one JSON object on one line of stdout.

    Fields passed as ``extra={"fields": {...}}`` become top-level keys. The
    stream is looked up at each write, so a test capturing stdout sees the lines.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            payload: dict[str, Any] = {
                "timestamp": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            payload.update(getattr(record, "fields", None) or {})
            if record.exc_info:
                payload["exception"] = logging.Formatter().formatException(record.exc_info)
            sys.stdout.write(json.dumps(payload, default=str, ensure_ascii=False, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - a log line must never fail an invocation
            self.handleError(record)


def _logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, JsonLinesHandler) for h in logger.handlers):
        logger.addHandler(JsonLinesHandler())
        logger.setLevel(logging.INFO)
        # Lambda's runtime puts a text handler on the root logger: do not log each line twice.
        logger.propagate = False
    return logger


def _context_fields(context: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, key in (("aws_request_id", "requestId"), ("function_name", "function")):
        value = getattr(context, name, None)
        if value:
            fields[key] = value
    return fields


def _remaining_ms(context: Any) -> int | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        return int(remaining())
    except (TypeError, ValueError):
        return None
