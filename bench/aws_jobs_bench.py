"""What one AI job asks of AWS: requests per job, per function, measured on moto.

The production flow, on a moto server this script starts on loopback: jobs
submitted through ``http_api`` (the web app through mangum, driven with API
Gateway HTTP API events), the request queue's event source mapping driven by
hand (tests/aws_e2e/lambda_poller.py: a ReceiveMessage of up to 10, the
Lambda event, a DeleteMessageBatch, as Lambda's poller does) invoking
``process_job_requests``, the response queue's invoking ``process_job_results``,
then one ``GET /jobs/{jobId}`` per job. Every request is counted with
``RequestCounter``, one counter per party; a container's start-up requests
(queue attributes) are counted apart from the steady state.

Two profiles: **batched** (jobs submitted together, so each receive carries
10) and **one at a time** (each job submitted, run and read before the next).

Run: ``.venv/bin/python bench/aws_jobs_bench.py`` (``BENCH_JOBS`` changes the size).
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
import boto3  # noqa: E402
from _common import machine, table, write_result  # noqa: E402

from cv_analytics.boto.metering import RequestCounter, RequestCounts  # noqa: E402
from cv_analytics.deploy.bootstrap import bootstrap  # noqa: E402
from cv_analytics.entrypoints import aws_lambda as handlers  # noqa: E402
from cv_analytics.entrypoints.aws_lambda import warm  # noqa: E402
from tests.aws_e2e.api_gateway import API_KEY, HttpAnswer, http_api_event  # noqa: E402
from tests.aws_e2e.lambda_poller import EventSourceMapping, LambdaContext  # noqa: E402
from tests.jobs.types_for_tests import register_test_types  # noqa: E402
from tests.moto_server import REGION, moto_server  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "50"))
PREFIX = "cv-jobs-bench"
PARTIES = ("api: submit", "request poller", "worker", "response poller", "results", "api: GET")


def _worker(event: dict[str, Any], _: Any) -> Any:
    return handlers.process_job_requests(event, LambdaContext("worker", remaining_ms=900_000))


def _results(event: dict[str, Any], _: Any) -> Any:
    return handlers.process_job_results(event, LambdaContext("results", remaining_ms=300_000))


def _api(method: str, path: str, **options: Any) -> HttpAnswer:
    return HttpAnswer(handlers.http_api(http_api_event(method, path, **options), LambdaContext("http-api")))


def _submit(value: str) -> str:
    answer = _api("POST", "/jobs", body={"type": "test.echo", "input": {"value": value}})
    assert answer.status == 202, answer.raw
    return str(answer.json()["jobId"])


def _read(job_id: str) -> None:
    answer = _api("GET", f"/jobs/{job_id}")
    assert answer.status == 200 and answer.json()["status"] == "succeeded", answer.raw


def _container(env: dict[str, str], make: Callable[[], Any]) -> tuple[RequestCounter, RequestCounts]:
    """A fresh container of one function counting its requests; its start-up requests."""
    counter = RequestCounter()
    handlers.configure(env=env, request_counter=counter)
    state = make()
    if hasattr(state, "wiring"):
        register_test_types(state.wiring.job_registry)
    return counter, counter.snapshot()


def _poller(env: dict[str, str], variable: str) -> tuple[EventSourceMapping, RequestCounter, RequestCounts, Any]:
    client = boto3.client("sqs", region_name=REGION)
    counter = RequestCounter()
    counter.attach(client)
    mapping = EventSourceMapping(client, env[variable])
    return mapping, counter, counter.snapshot(), client


def batched(env: dict[str, str], jobs: int) -> tuple[dict[str, RequestCounts], dict[str, int], int]:
    """Each function in its own phase and container: every request attributed to its party."""
    steady: dict[str, RequestCounts] = {}
    startup: dict[str, int] = {}
    requests, request_counter, request_start, request_client = _poller(env, "AI_JOB_REQUEST_QUEUE_URL")
    responses, response_counter, response_start, response_client = _poller(env, "AI_JOB_RESPONSE_QUEUE_URL")

    counter, start = _container(env, warm.http_api_state)
    ids = [_submit(f"job {i}") for i in range(jobs)]
    steady["api: submit"], startup["api: submit"] = counter.snapshot() - start, start.calls_to()

    counter, start = _container(env, warm.job_worker_state)
    invocations = len(requests.drain(_worker))
    steady["worker"], startup["worker"] = counter.snapshot() - start, start.calls_to()

    counter, start = _container(env, warm.job_results_state)
    responses.drain(_results)
    steady["results"], startup["results"] = counter.snapshot() - start, start.calls_to()

    counter, start = _container(env, warm.http_api_state)
    for job_id in ids:
        _read(job_id)
    steady["api: GET"], startup["api: GET"] = counter.snapshot() - start, start.calls_to()

    for party, counter, start in (
        ("request poller", request_counter, request_start),
        ("response poller", response_counter, response_start),
    ):
        steady[party], startup[party] = counter.snapshot() - start, start.calls_to()
    request_client.close()
    response_client.close()
    handlers.reset()
    return steady, startup, invocations


def one_at_a_time(env: dict[str, str], jobs: int) -> tuple[RequestCounts, int]:
    """Each job submitted, run, applied and read before the next, warm containers; all functions on one counter."""
    counter = RequestCounter()
    handlers.configure(env=env, request_counter=counter)
    for make in (warm.http_api_state, warm.job_worker_state):
        register_test_types(make().wiring.job_registry)
    warm.job_results_state()
    requests, request_counter, _, request_client = _poller(env, "AI_JOB_REQUEST_QUEUE_URL")
    responses, response_counter, _, response_client = _poller(env, "AI_JOB_RESPONSE_QUEUE_URL")
    start = counter.snapshot()
    for i in range(jobs):
        job_id = _submit(f"job {i}")
        requests.drain(_worker)
        responses.drain(_results)
        _read(job_id)
    functions = counter.snapshot() - start
    pollers = request_counter.snapshot().billable_requests("sqs") + response_counter.snapshot().billable_requests("sqs")
    request_client.close()
    response_client.close()
    handlers.reset()
    return functions, pollers


def _rows(counts: dict[str, RequestCounts], jobs: int) -> list[list[object]]:
    rows: list[list[object]] = [
        [party, f"{counts[party].billable_requests('sqs') / jobs:.2f}", f"{counts[party].calls_to('dynamodb') / jobs:.2f}"]
        for party in PARTIES
    ]
    sqs = sum(counts[p].billable_requests("sqs") for p in PARTIES) / jobs
    dynamodb = sum(counts[p].calls_to("dynamodb") for p in PARTIES) / jobs
    rows.append(["**all**", f"**{sqs:.2f}**", f"**{dynamodb:.2f}**"])
    return rows


def main() -> int:
    logging.getLogger(handlers.LOGGER_NAME).disabled = True  # one JSON line per invocation: not the point here
    started = time.perf_counter()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cv-aws-jobs-") as tmp, moto_server(tmp) as endpoint:
        report = bootstrap(boto3.Session(region_name=REGION), PREFIX)
        env = {
            **report["environment"],
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "CV_ANALYTICS_API_KEYS": API_KEY,
            "CV_ANALYTICS_DATA_DIR": str(pathlib.Path(tmp) / "data"),
        }
        steady, startup, invocations = batched(env, JOBS)
        trickle = max(1, JOBS // 5)
        functions, pollers = one_at_a_time(env, trickle)
    batched_rows = _rows(steady, JOBS)
    markdown = (
        "# AWS requests per AI job\n\n"
        f"Measured on moto ({machine()}), load average {load:.2f} at the start, "
        f"{time.perf_counter() - started:.0f} s in all. The jobs are `test.echo` (no work of their own): "
        "these are the service's own requests, a job type's come on top. A job here is its submit, its run, "
        "its result applied and one `GET` of it.\n\n"
        f"## Batched: {JOBS} jobs submitted together ({invocations} worker invocations)\n\n"
        + table(["party", "SQS billable requests per job", "DynamoDB calls per job"], batched_rows)
        + "\n\nMade when a container starts: "
        + ", ".join(f"{party} {startup[party]}" for party in PARTIES)
        + " AWS calls; a queue a function opens on its first request (its attributes, its dead-letter "
        "queue's URL) is in the rows above, spread over the run's jobs.\n\n"
        f"## One at a time: {trickle} jobs, each submitted, run and read before the next (warm containers)\n\n"
        f"Per job: {functions.billable_requests('sqs') / trickle:.2f} SQS requests from the functions and "
        f"{pollers / trickle:.2f} from the two pollers (each drain ends on an empty receive, which Lambda's "
        f"long-polling pollers make anyway), {functions.calls_to('dynamodb') / trickle:.2f} DynamoDB calls.\n\n"
        "<details><summary>Every request of the batched run</summary>\n\n"
        + "\n\n".join(f"**{party}**\n\n{steady[party].to_markdown()}" for party in PARTIES)
        + "\n\n</details>"
    )
    write_result("aws_jobs_bench", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
