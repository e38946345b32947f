"""``process_job_requests`` and ``process_job_results``: the AI jobs queues' SQS event source handlers.

``process_job_requests`` is fed by the request queue (batches of up to 10
gathered for up to 5 s, ``ReportBatchItemFailures``; see
``infra/template.yaml``) and runs each job with the jobs engine's
:class:`~cv_analytics.jobs.JobWorkerHandler`, as the embedded ``jobs worker``
does: claim, run with heartbeat and timeout, the result on the response queue;
a failed attempt is retried after a backoff until the last receive, where the
job becomes ``dead``. A job is started only with enough of the invocation
left; the rest of the batch goes back to the queue at once for the next.
After a batch (on a container's first invocation, then at most once a minute,
and with time left), the jobs whose request SQS dead-lettered by itself (a
container killed on its last receive, so no ``dead`` result was sent) become
``dead`` with the queue's reason, as the embedded worker's sweep does.

``process_job_results`` is fed by the response queue and writes results to
the job store with :class:`~cv_analytics.jobs.JobResultHandler`: a
duplicate or late result never moves a finished job.

Both go through :mod:`.batches` (the batch engine, partial batch failures)
and return ``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}``.
Logging: per invocation one JSON line with the counts and duration, one per
message not handled.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...exceptions import CVAnalyticsError
from .batches import batch_item_failures, process_records
from .logs import MAX_LOGGED_REASON, context_fields, logger, remaining_ms
from .warm import JobWorkerState, job_results_state, job_worker_state

if TYPE_CHECKING:
    from ...queues.base import Queue
    from ...queues.batch import BatchResult

SQSEvent = Mapping[str, Any]
BatchResponse = dict[str, list[dict[str, str]]]

#: A job is started only with this much of the invocation left: the rest of a
#: batch goes back to the queue rather than being cut off by Lambda's timeout.
JOB_START_MIN_REMAINING_MS = 60_000
#: The dead-letter sweep is not started with less than this left.
SWEEP_MIN_REMAINING_MS = 10_000


def process_job_requests(event: SQSEvent, context: Any = None) -> BatchResponse:
    """Lambda handler of the request queue: run the batch's jobs, report the messages to retry.

    Raises only when it cannot work at all (no queue or job store configured,
    AWS unreachable while starting): Lambda then retries the whole batch, which
    is safe because a finished job is never run again.
    """
    return _guarded("job request batch", _process_job_requests, event, context)


def process_job_results(event: SQSEvent, context: Any = None) -> BatchResponse:
    """Lambda handler of the response queue: apply the batch's results to the job store."""
    return _guarded("job result batch", _process_job_results, event, context)


def _guarded(what: str, process: Any, event: SQSEvent, context: Any) -> BatchResponse:
    try:
        return process(event, context)  # type: ignore[no-any-return]
    except Exception as exc:
        logger().error(
            f"{what} not processed; Lambda will retry the whole batch",
            exc_info=not isinstance(exc, CVAnalyticsError),  # a traceback only for the unforeseen
            extra={"fields": {**context_fields(context), "error": str(exc)[: 2 * MAX_LOGGED_REASON]}},
        )
        raise


def _process_job_requests(event: SQSEvent, context: Any) -> BatchResponse:
    from ...queues.batch import BatchEngine
    from ...queues.lambda_records import records_of

    started = time.perf_counter()
    state = job_worker_state()
    cold_start = state.invocations == 0
    state.invocations += 1

    def may_start() -> bool:
        left = remaining_ms(context)
        return left is None or left >= JOB_START_MIN_REMAINING_MS

    records = records_of(event)
    settled = process_records(BatchEngine(state.handler), records, state.queues.queue_for, may_start=may_start)
    dead = _settle_dead_letters_if_due(state, context)
    return _answer("processed job requests", context, records, settled, started, cold_start, {"deadLettersSettled": dead})


def _settle_dead_letters_if_due(state: JobWorkerState, context: Any) -> int | None:
    from ...jobs.worker import DEAD_LETTER_SWEEP_SECONDS, settle_dead_letters

    now = state.clock.now()
    left = remaining_ms(context)
    if now < state.next_dead_letter_sweep or (left is not None and left < SWEEP_MIN_REMAINING_MS):
        return None
    state.next_dead_letter_sweep = now + DEAD_LETTER_SWEEP_SECONDS
    try:
        return settle_dead_letters(state.handler.store, state.handler.request_queue)
    except Exception as exc:  # noqa: BLE001 - the batch is done: failing now would only redeliver it
        logger().warning("dead-letter sweep failed; the next one retries", extra={"fields": {"error": str(exc)}})
        return None


def _process_job_results(event: SQSEvent, context: Any) -> BatchResponse:
    from ...queues.batch import BatchEngine
    from ...queues.lambda_records import records_of

    started = time.perf_counter()
    state = job_results_state()
    cold_start = state.invocations == 0
    state.invocations += 1
    records = records_of(event)
    settled = process_records(BatchEngine(state.handler), records, state.queues.queue_for)
    return _answer("processed job results", context, records, settled, started, cold_start)


def _answer(
    what: str,
    context: Any,
    records: list[Any],
    settled: list[tuple[Queue, BatchResult]],
    started: float,
    cold_start: bool,
    extra: dict[str, Any] | None = None,
) -> BatchResponse:
    statuses: Counter[str] = Counter()
    details: Counter[str] = Counter()
    for queue, result in settled:
        for item in result.items:
            statuses[item.status.value] += 1
            if item.status.value == "succeeded":
                details[str(item.detail)] += 1  # succeeded, cancelled, finished (a duplicate), applied, ignored
            else:
                _log_failure(context, item.message_id, item.reason or "", queue.name, item.status.value)
    failures = batch_item_failures(settled)
    logger().info(
        what,
        extra={
            "fields": {
                **context_fields(context),
                "coldStart": cold_start,
                "records": len(records),
                **{_camel(status): count for status, count in sorted(statuses.items())},
                "outcomes": dict(sorted(details.items())),
                "batchItemFailures": len(failures),
                **{k: v for k, v in (extra or {}).items() if v is not None},
                "durationMs": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _log_failure(context: Any, message_id: str, reason: str, queue: str, status: str) -> None:
    logger().warning(
        "job message not handled",
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
