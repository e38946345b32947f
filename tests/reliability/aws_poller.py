"""A Lambda function's container as a process of its own: an SQS event source mapping driving one handler.

``python -m tests.reliability.aws_poller HANDLER QUEUE_URL [--kill-before-delete-on-poll N]``
polls ``QUEUE_URL`` forever with :class:`~tests.aws_e2e.lambda_poller.EventSourceMapping` (the
mapping's receive, Lambda's exact event, the delete of what the answer does not report failed),
invoking ``HANDLER`` (``analytics``, ``job-requests`` or ``job-results``) configured from the
environment as a deployed function is. Killing the process with SIGKILL is a Lambda container
crashing mid-batch: what it received and did not delete comes back after the visibility timeout.
``--kill-before-delete-on-poll N`` has the process SIGKILL itself on its N-th batch after the
handler answered and before the mapping deletes (the crash between receive and delete).
Each answered batch prints one ``polled <n>`` line to stderr (the scenarios wait on it).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any

import boto3

from cv_analytics.entrypoints import aws_lambda as handlers
from cv_analytics.entrypoints.aws_lambda import warm
from tests.aws_e2e.lambda_poller import EventSourceMapping, LambdaContext
from tests.jobs.types_for_tests import register_test_types

#: What the stack gives each function to run (the job worker's 15 minutes: it starts jobs only with 60 s left).
_REMAINING_MS = {"analytics": 300_000, "job-requests": 900_000, "job-results": 300_000}


def _job_requests(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
    registry = warm.job_worker_state().wiring.job_registry
    if "test.echo" not in registry:
        register_test_types(registry)
    return handlers.process_job_requests(event, context)


HANDLERS = {
    "analytics": handlers.process_analytics,
    "job-requests": _job_requests,
    "job-results": handlers.process_job_results,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aws_poller")
    parser.add_argument("handler", choices=sorted(HANDLERS))
    parser.add_argument("queue_url")
    parser.add_argument("--kill-before-delete-on-poll", type=int, default=None)
    args = parser.parse_args(argv)
    handler = HANDLERS[args.handler]
    sqs = boto3.client("sqs")
    mapping = EventSourceMapping(sqs, args.queue_url)
    polls = 0

    def invoke(event: dict[str, Any], _context: Any) -> Mapping[str, Any]:
        context = LambdaContext(f"cv-reliability-{args.handler}", remaining_ms=_REMAINING_MS[args.handler])
        answer = handler(event, context)
        if polls + 1 == args.kill_before_delete_on_poll:
            print(f"killing myself before the delete of batch {polls + 1}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return answer

    print("polling", file=sys.stderr, flush=True)
    while True:
        if mapping.poll(invoke) is None:
            time.sleep(0.2)  # Lambda's pollers long-poll; an empty receive costs moto a request
            continue
        polls += 1
        print(f"polled {polls}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
