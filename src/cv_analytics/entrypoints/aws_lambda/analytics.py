"""``process_analytics(event, context)``: the analytics queue's SQS event source handler.

Fed by the analytics queue's event source mapping (batches of up to 10,
``ReportBatchItemFailures``; see ``infra/template.yaml``). The records become
messages (:mod:`cv_analytics.queues.lambda_records`) and go through the same
batch engine and analytics handler as the embedded worker: a message that can
never be recorded goes to the dead-letter queue (of the queue it came from, its
``eventSourceARN``) with its reason on its first receive; a store outage reports
the batch failed, left to the visibility timeout as a natural backoff; messages
skipped by the FIFO rule are made visible again at once. Returns the partial
batch response ``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}``:
Lambda deletes the other messages
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).

Orphan sweep: after a batch, at most every sweep interval per container and on
a container's first invocation (a lightly used function lives in short-lived
containers: waiting a whole interval in each would mean never sweeping), and
only with enough time left in the invocation.

Logging: per invocation one JSON line with the counts of what happened, the
duration and whether it was a cold start; one line per message not recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...exceptions import CVAnalyticsError
from .batches import batch_item_failures, process_records
from .logs import MAX_LOGGED_REASON, context_fields, logger, remaining_ms
from .warm import ProcessorState, processor_state

if TYPE_CHECKING:
    from ...queues.batch import BatchResult

SQSEvent = Mapping[str, Any]
BatchResponse = dict[str, list[dict[str, str]]]

#: A sweep is not started with less time than this left in the invocation: the batch's answer matters more.
SWEEP_MIN_REMAINING_MS = 10_000


def process_analytics(event: SQSEvent, context: Any = None) -> BatchResponse:
    """Lambda handler of the analytics queue's SQS event source: record the batch, report the failures.

    One bad record never fails the batch. The handler raises only when it
    cannot work at all (no queue or store configured, AWS unreachable while
    starting): Lambda then retries the whole batch, which is safe because
    recording is idempotent, and the function's Errors alarm fires.
    """
    try:
        return _process_analytics(event, context)
    except Exception as exc:
        logger().error(
            "analytics batch not processed; Lambda will retry the whole batch",
            exc_info=not isinstance(exc, CVAnalyticsError),  # a traceback only for the unforeseen
            extra={"fields": {**context_fields(context), "error": str(exc)[: 2 * MAX_LOGGED_REASON]}},
        )
        raise


def _process_analytics(event: SQSEvent, context: Any) -> BatchResponse:
    from ...processor.handler import AnalyticsHandler
    from ...queues.batch import BatchEngine
    from ...queues.lambda_records import records_of

    started = time.perf_counter()
    state = processor_state()
    cold_start = state.invocations == 0
    state.invocations += 1
    records = records_of(event)
    settled = process_records(
        BatchEngine(AnalyticsHandler(state.store, redact=state.settings.redact_pii)), records, state.queue_for
    )
    tally: Counter[str] = Counter(records=len(records))
    for queue, result in settled:
        _count(tally, result)
        for item in result.items:
            if item.status.value != "succeeded":
                _log_failure(context, item.message_id, item.reason or "", queue.name, item.status.value)
    failures = batch_item_failures(settled)
    swept = _sweep_if_due(state, context)
    fields: dict[str, Any] = {
        **context_fields(context),
        "coldStart": cold_start,
        **{key: tally[name] for key, name in _TALLY_FIELDS},
        "batchItemFailures": len(failures),
        "durationMs": round((time.perf_counter() - started) * 1000, 1),
    }
    if swept is not None:
        fields["swept"] = swept
    logger().info("processed analytics batch", extra={"fields": fields})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


#: (log field, tally key) of the invocation line.
_TALLY_FIELDS = (
    ("records", "records"),
    ("succeeded", "succeeded"),
    ("correlated", "correlated"),
    ("pending", "pending"),
    ("duplicates", "duplicates"),
    ("failed", "failed"),
    ("skipped", "skipped"),
    ("deadLettered", "dead_lettered"),
    ("malformed", "malformed"),
    ("visibilityResets", "visibility_resets"),
)


def _count(tally: Counter[str], result: BatchResult) -> None:
    from ...queues.batch import Status
    from ...stores.models import RecordOutcome

    for item in result.items:
        if item.status is Status.SUCCEEDED:
            tally["succeeded"] += 1
            if item.detail in (RecordOutcome.CORRELATED, RecordOutcome.COMPLETED_LATE):
                tally["correlated"] += 1
            elif item.detail is RecordOutcome.PENDING:
                tally["pending"] += 1
            elif item.detail is RecordOutcome.DUPLICATE:
                tally["duplicates"] += 1
        elif item.status is Status.DEAD_LETTERED:
            tally["dead_lettered"] += 1
        elif item.status is Status.SKIPPED:
            tally["skipped"] += 1
            tally["visibility_resets"] += 1  # made visible again at once by the engine's settle
        elif item.message is None:
            tally["malformed"] += 1
        else:
            tally["failed"] += 1


def _sweep_if_due(state: ProcessorState, context: Any) -> dict[str, int] | None:
    now = state.clock.now()
    if now < state.next_sweep:
        return None
    remaining = remaining_ms(context)
    if remaining is not None and remaining < SWEEP_MIN_REMAINING_MS:
        return None  # the next invocation sweeps
    state.next_sweep = now + state.sweep_interval_seconds
    try:
        swept = state.store.sweep_orphans(state.orphan_timeout_seconds)
    except Exception as exc:  # noqa: BLE001
        # the batch is recorded already: failing the invocation would only redeliver it
        logger().exception("orphan sweep failed; the next one retries", extra={"fields": {"error": str(exc)}})
        return None
    return {"unanswered": swept.unanswered, "orphanResponses": swept.orphan_responses}


def _log_failure(context: Any, message_id: str, reason: str, queue: str, status: str) -> None:
    logger().warning(
        "analytics message not processed",
        extra={
            "fields": {
                **context_fields(context),
                "messageId": message_id,
                "queue": queue,
                "status": status,
                "reason": reason[:MAX_LOGGED_REASON],
            }
        },
    )
