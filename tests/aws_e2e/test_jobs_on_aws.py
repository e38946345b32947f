"""The AI jobs service on moto (SQS, DynamoDB): the HTTP API through mangum with API Gateway's
HTTP API events, the job worker and result Lambdas with SQS events from an event source mapping
driven by hand, the jobs table in DynamoDB, each function within the IAM role the stack gives it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from cv_analytics.boto.metering import RequestCounter
from cv_analytics.entrypoints import aws_lambda as handlers
from cv_analytics.entrypoints.aws_lambda import warm
from cv_analytics.jobs import JobRequest, JobResult, JobStatus
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE
from cv_analytics.queues.lambda_records import message_from_fields, record_of_message
from cv_analytics.wiring import Settings
from tests.jobs.types_for_tests import register_test_types

from . import iam
from .api_gateway import API_KEY, HttpAnswer, http_api_event
from .conftest import Deployment
from .lambda_poller import EventSourceMapping, LambdaContext

pytestmark = pytest.mark.slow

@dataclass
class JobsDeployment:
    """The bootstrapped resources, the functions' environment, and the two queues' event source mappings."""

    aws: Deployment
    env: dict[str, str]
    requests: EventSourceMapping
    responses: EventSourceMapping

    @property
    def request_queue_url(self) -> str:
        return self.env["AI_JOB_REQUEST_QUEUE_URL"]

    @property
    def request_dlq_url(self) -> str:
        return self.env["CV_ANALYTICS_JOB_REQUEST_DLQ_URL"]

    def configure(self, counter: RequestCounter | None = None) -> None:
        """A fresh container for every function (counting its AWS requests), with the test job types."""
        handlers.configure(env=self.env, request_counter=counter)

    def worker(self, event: dict[str, Any], _poller_context: Any = None, *, remaining_ms: int = 900_000) -> Mapping[str, Any]:
        """``process_job_requests`` in a 15-minute invocation with ``remaining_ms`` left."""
        register_types(warm.job_worker_state().wiring.job_registry)
        return handlers.process_job_requests(event, LambdaContext("cv-jobs-process-job-requests", remaining_ms=remaining_ms))

    def results(self, event: dict[str, Any], _poller_context: Any = None) -> Mapping[str, Any]:
        return handlers.process_job_results(event, LambdaContext("cv-jobs-process-job-results", remaining_ms=300_000))

    def http(self, method: str, path: str, **options: Any) -> HttpAnswer:
        register_types(warm.http_api_state().wiring.job_registry)
        answer = handlers.http_api(http_api_event(method, path, **options), LambdaContext("cv-jobs-http-api"))
        return HttpAnswer(answer)


def register_types(registry: Any) -> None:
    if "test.echo" not in registry:
        register_test_types(registry)


@pytest.fixture
def jobs(aws: Deployment) -> Iterator[JobsDeployment]:
    env = {**aws.env, "CV_ANALYTICS_API_KEYS": API_KEY, "CV_ANALYTICS_JOBS_RETRY_BASE": "0.2"}
    deployment = JobsDeployment(
        aws,
        env,
        EventSourceMapping(aws.sqs, env["AI_JOB_REQUEST_QUEUE_URL"]),
        EventSourceMapping(aws.sqs, env["AI_JOB_RESPONSE_QUEUE_URL"]),
    )
    deployment.configure()
    yield deployment
    handlers.reset()


def _submit(
    jobs: JobsDeployment,
    value: str = "hello",
    *,
    job_type: str = "test.echo",
    job_input: dict[str, Any] | None = None,
    **options: Any,
) -> HttpAnswer:
    """``POST /jobs``: a test.echo job of ``value``, or ``job_type`` with ``job_input``."""
    body = {"type": job_type, "input": {"value": value} if job_input is None else job_input}
    return jobs.http("POST", "/jobs", body=body, **options)


def _poll_until(mapping: EventSourceMapping, handler: Any, *, timeout: float = 10.0) -> Any:
    """Poll until a receive finds messages (a retried message comes back after its backoff)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poll = mapping.poll(handler)
        if poll is not None:
            return poll
        time.sleep(0.05)
    raise AssertionError(f"nothing came back to {mapping.queue_url} within {timeout} s")


# -- the HTTP API through mangum ----------------------------------------------------------------


def test_post_jobs_answers_202_with_the_location_of_a_queued_job_in_dynamodb(jobs: JobsDeployment) -> None:
    answer = _submit(jobs, "from API Gateway")

    assert answer.status == 202, answer.raw
    job = answer.json()
    assert answer.headers["location"] == f"/jobs/{job['jobId']}"
    assert job["status"] == "queued" and job["input"]["value"] == "from API Gateway"
    status = jobs.http("GET", answer.headers["location"])
    assert status.status == 200 and status.json()["jobId"] == job["jobId"]
    assert status.headers["etag"] == answer.headers["etag"]
    # the request is on the SQS request queue, the job in the jobs table
    (message,) = jobs.requests.receive()
    assert JobRequest.from_body(message["Body"]).job_id == job["jobId"]
    table = Settings.from_env(jobs.env).dynamodb_tables["jobs"]
    dynamodb = boto3.client("dynamodb")
    stored = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"job#{job['jobId']}"}})["Item"]
    dynamodb.close()
    assert stored["status"]["S"] == "queued" and int(stored["ttl"]["N"]) > time.time()


def test_the_http_api_refuses_requests_without_a_known_key_and_bad_input_by_name(jobs: JobsDeployment) -> None:
    for key in (None, "wrong-key"):
        answer = jobs.http("POST", "/jobs", body={"type": "test.echo", "input": {"value": "x"}}, api_key=key)
        assert answer.status == 401, answer.raw
        assert jobs.http("GET", "/jobs", api_key=key).status == 401
    assert jobs.requests.receive() == []

    wrong = jobs.http("POST", "/jobs", body={"type": "test.echo", "input": {"value": 42}})
    assert wrong.status == 422
    assert "value" in json.dumps(wrong.json())
    assert jobs.http("POST", "/jobs", body="{not json").status == 422
    assert jobs.http("GET", f"/jobs/{uuid.uuid4()}").status == 404
    assert jobs.http("GET", "/healthz", api_key=None).json() == {"status": "ok"}  # $default: the rest of the app


def test_a_warm_container_answers_with_one_app_over_one_wiring(jobs: JobsDeployment) -> None:
    first = _submit(jobs, "one")
    state = warm.http_api_state()
    store = state.wiring.job_store
    second = jobs.http("GET", first.headers["location"])

    assert second.status == 200
    assert warm.http_api_state() is state and state.wiring.job_store is store  # nothing closed in between
    assert state.invocations == 2


def test_an_idempotency_key_replays_the_first_job_and_refuses_another_body(jobs: JobsDeployment) -> None:
    first = _submit(jobs, "once", headers={"Idempotency-Key": "order-7"})
    again = _submit(jobs, "once", headers={"Idempotency-Key": "order-7"})
    other = _submit(jobs, "twice", headers={"Idempotency-Key": "order-7"})

    assert (first.status, again.status, other.status) == (202, 200, 409)
    assert again.json()["jobId"] == first.json()["jobId"]
    assert len(jobs.requests.receive()) == 1


def test_list_and_cancel_through_the_http_api(jobs: JobsDeployment) -> None:
    ids = [_submit(jobs, f"job {i}").json()["jobId"] for i in range(3)]

    page = jobs.http("GET", "/jobs", query={"limit": "2"}).json()
    rest = jobs.http("GET", "/jobs", query={"limit": "2", "cursor": page["nextCursor"]}).json()
    assert [j["jobId"] for j in page["jobs"] + rest["jobs"]] == ids[::-1]
    assert rest["nextCursor"] is None
    cancelled = jobs.http("POST", f"/jobs/{ids[0]}/cancel")
    assert cancelled.status == 200 and cancelled.json()["status"] == "cancelled"
    listed = jobs.http("GET", "/jobs", query={"status": "queued"}).json()["jobs"]
    assert {j["jobId"] for j in listed} == set(ids[1:])
    # the cancelled job's request is deleted by the worker without running it; the others run
    worked = jobs.requests.drain(jobs.worker)
    assert sum(len(p.deleted) for p in worked) == 3 and not [p.failed for p in worked if p.failed]
    jobs.responses.drain(jobs.results)
    statuses = [jobs.http("GET", f"/jobs/{i}").json()["status"] for i in ids]
    assert statuses == ["cancelled", "succeeded", "succeeded"]


# -- the job worker and the result Lambda with SQS events ---------------------------------------


def test_the_worker_lambda_runs_a_job_and_sends_its_result_to_the_response_queue(jobs: JobsDeployment) -> None:
    job_id = _submit(jobs, "worked").json()["jobId"]

    poll = jobs.requests.poll(jobs.worker)

    assert poll is not None and poll.answer == {"batchItemFailures": []}
    (message,) = jobs.responses.receive()
    result = JobResult.from_body(message["Body"])
    assert (result.job_id, result.status, result.result) == (job_id, JobStatus.SUCCEEDED, {"echo": "worked", "attempt": 1})
    assert jobs.http("GET", f"/jobs/{job_id}").json()["status"] == "running"  # until the result is applied


def test_records_made_by_record_of_message_drive_the_worker_as_lambda_would(jobs: JobsDeployment) -> None:
    job_id = _submit(jobs, "by hand").json()["jobId"]
    (received,) = jobs.requests.receive()
    message = message_from_fields(
        received["MessageId"], received["ReceiptHandle"], received["Body"], {"ApproximateReceiveCount": "1"}, {}
    )

    answer = jobs.worker({"Records": [record_of_message(message, source_arn=jobs.requests.arn, region="us-east-1")]})

    assert answer == {"batchItemFailures": []}
    (result,) = jobs.responses.receive()
    assert JobResult.from_body(result["Body"]).job_id == job_id


def test_a_failing_job_is_reported_failed_retried_and_dead_on_its_third_receive(jobs: JobsDeployment) -> None:
    job_id = _submit(jobs, job_type="test.fail", job_input={}).json()["jobId"]

    answers = [_poll_until(jobs.requests, jobs.worker) for _ in range(3)]

    first, second, third = answers
    assert first.failed == [first.event["Records"][0]["messageId"]]  # retried: Lambda keeps it
    assert second.failed == first.failed
    assert third.failed == []  # dead: moved to the dead-letter queue by the handler, with the reason
    (dead,) = jobs.aws.sqs.receive_message(
        QueueUrl=jobs.request_dlq_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert "boom on attempt 3" in dead["MessageAttributes"][FAILURE_REASON_ATTRIBUTE]["StringValue"]
    assert jobs.requests.receive() == []
    jobs.responses.drain(jobs.results)
    job = jobs.http("GET", f"/jobs/{job_id}").json()
    assert (job["status"], job["attempts"]) == ("dead", 3)
    assert "receive 3 of 3" in job["error"]


def test_a_request_sqs_dead_lettered_by_itself_makes_its_job_dead_on_the_next_invocation(jobs: JobsDeployment) -> None:
    # As if the container running it was killed on the last receive: SQS's redrive moves the
    # request to the dead-letter queue as it is, and no dead result was ever sent.
    job_id = _submit(jobs, "killed three times").json()["jobId"]
    (message,) = jobs.requests.receive()
    jobs.aws.sqs.send_message(QueueUrl=jobs.request_dlq_url, MessageBody=message["Body"])
    jobs.aws.sqs.delete_message(QueueUrl=jobs.request_queue_url, ReceiptHandle=message["ReceiptHandle"])
    waiting = _submit(jobs, "still waiting").json()["jobId"]  # its request is in the queue: not touched

    jobs.worker({"Records": []})  # a container's first invocation sweeps

    job = jobs.http("GET", f"/jobs/{job_id}").json()
    assert job["status"] == "dead" and "dead-lettered by the queue" in job["error"], job
    assert jobs.http("GET", f"/jobs/{waiting}").json()["status"] == "queued"
    assert jobs.aws.queue_counts(jobs.request_dlq_url)[0] == 1  # the dead letter stays for people to see


def test_a_permanent_failure_fails_the_job_at_once(jobs: JobsDeployment) -> None:
    job_id = _submit(jobs, job_type="test.fail", job_input={"permanent": True}).json()["jobId"]

    poll = _poll_until(jobs.requests, jobs.worker)
    jobs.responses.drain(jobs.results)

    assert poll.failed == []
    job = jobs.http("GET", f"/jobs/{job_id}").json()
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert "can never work" in job["error"]


def test_the_result_lambda_applies_a_result_once_and_a_late_one_never_moves_it_back(jobs: JobsDeployment) -> None:
    job_id = _submit(jobs, "first").json()["jobId"]
    jobs.requests.drain(jobs.worker)
    (sent,) = jobs.responses.receive()
    duplicate = {**sent, "MessageId": str(uuid.uuid4())}
    late_failure = JobResult(job_id=job_id, status=JobStatus.FAILED, error="a late attempt failed", attempt=1)
    jobs.aws.sqs.send_message(QueueUrl=jobs.responses.queue_url, MessageBody=late_failure.to_body())

    applied = jobs.responses.deliver([sent], jobs.results)
    again = jobs.responses.deliver([duplicate], jobs.results)
    late = jobs.responses.poll(jobs.results)

    assert applied.failed == again.failed == [] and late is not None and late.failed == []
    job = jobs.http("GET", f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["result"] == {"echo": "first", "attempt": 1}
    assert job["error"] is None


def test_a_result_that_is_no_result_goes_to_the_dead_letter_queue_and_the_rest_of_the_batch_is_applied(
    jobs: JobsDeployment,
) -> None:
    job_id = _submit(jobs, "kept").json()["jobId"]
    jobs.requests.drain(jobs.worker)
    for body in ("not json at all", json.dumps({"jobId": job_id, "status": "running"})):
        jobs.aws.sqs.send_message(QueueUrl=jobs.responses.queue_url, MessageBody=body)

    polls = jobs.responses.drain(jobs.results)

    assert [p.failed for p in polls] == [[] for _ in polls]
    dead = jobs.aws.sqs.receive_message(
        QueueUrl=jobs.env["CV_ANALYTICS_JOB_RESPONSE_DLQ_URL"], MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert len(dead) == 2
    assert jobs.http("GET", f"/jobs/{job_id}").json()["status"] == "succeeded"


def test_a_worker_with_too_little_time_left_starts_no_job_and_gives_the_batch_back(jobs: JobsDeployment) -> None:
    ids = [_submit(jobs, f"later {i}").json()["jobId"] for i in range(3)]
    messages = jobs.requests.receive()

    hurried = jobs.requests.deliver(messages, lambda event, _: jobs.worker(event, remaining_ms=5_000))

    assert sorted(hurried.failed) == sorted(m["MessageId"] for m in messages)
    assert jobs.responses.receive() == []
    # visible again at once, for the next invocation, which runs them
    again = jobs.requests.drain(jobs.worker)
    assert sum(len(p.deleted) for p in again) == 3
    jobs.responses.drain(jobs.results)
    assert {jobs.http("GET", f"/jobs/{i}").json()["status"] for i in ids} == {"succeeded"}


def test_an_outage_while_the_worker_runs_loses_nothing_and_dead_letters_nothing(jobs: JobsDeployment) -> None:
    from tests.aws_backends.moto_envs import TcpProxy

    ids = [_submit(jobs, f"through an outage {i}").json()["jobId"] for i in range(3)]
    proxy = TcpProxy(jobs.aws.endpoint)
    try:
        jobs.env["AWS_ENDPOINT_URL"] = proxy.url  # the functions reach AWS through a link that can be cut
        jobs.configure()
        register_types(warm.job_worker_state().wiring.job_registry)  # a warm container
        messages = jobs.requests.receive()
        with proxy.down():
            cut = jobs.requests.deliver(messages, jobs.worker)

        assert sorted(cut.failed) == sorted(m["MessageId"] for m in messages)  # all retried, none lost
        assert jobs.aws.queue_counts(jobs.request_dlq_url) == (0, 0)
        # the visibility timeout passes (Lambda leaves an outage's messages to it)
        for message in messages:
            jobs.aws.sqs.change_message_visibility(
                QueueUrl=jobs.request_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        jobs.requests.drain(jobs.worker)
        jobs.responses.drain(jobs.results)
        for job_id in ids:
            job = jobs.http("GET", f"/jobs/{job_id}").json()
            assert (job["status"], job["attempts"]) == ("succeeded", 1), job  # the cut claim never counted
    finally:
        handlers.reset()
        proxy.close()


# -- the whole flow, and what each function may do ----------------------------------------------


def test_submit_request_queue_worker_response_queue_results_get_succeeded(jobs: JobsDeployment) -> None:
    submitted = [_submit(jobs, f"flow {i}").json() for i in range(12)]  # more than one batch of ten

    worked = jobs.requests.drain(jobs.worker)
    applied = jobs.responses.drain(jobs.results)

    assert sum(len(p.deleted) for p in worked) == sum(len(p.deleted) for p in applied) == 12
    for job in submitted:
        status = jobs.http("GET", f"/jobs/{job['jobId']}", query={"wait": "1"}).json()
        assert status["status"] == "succeeded", status
        assert status["result"]["echo"] == job["input"]["value"]
        assert status["progress"] == 100
    assert jobs.aws.queue_counts(jobs.request_queue_url) == (0, 0)
    assert jobs.aws.queue_counts(jobs.request_dlq_url) == (0, 0)


def test_each_function_calls_only_what_its_iam_role_grants(jobs: JobsDeployment) -> None:
    used: dict[str, set[str]] = {}

    def counted(role: str) -> RequestCounter:
        counter = RequestCounter()
        jobs.configure(counter)  # a fresh container, counting its requests
        return counter

    counter = counted("HttpApiRole")
    job_id = _submit(jobs, "audited", headers={"Idempotency-Key": "audit-1"}).json()["jobId"]
    assert _submit(jobs, "audited", headers={"Idempotency-Key": "audit-1"}).json()["jobId"] == job_id
    report = jobs.http("POST", "/jobs", body={"type": "analytics.report", "input": {"week": "2026-W47"}})
    assert report.status == 202, report.raw  # it sweeps and reads the analytics tables from the worker
    assert _submit(jobs, job_type="test.fail", job_input={"failures": 1}).status == 202
    jobs.http("GET", f"/jobs/{job_id}")
    for query in ({"status": "queued", "type": "test.echo"}, {"type": "test.echo"}, {}):
        assert jobs.http("GET", "/jobs", query=query).status == 200
    cancel_me = _submit(jobs, "cancelled").json()["jobId"]
    assert jobs.http("POST", f"/jobs/{cancel_me}/cancel").status == 200
    assert jobs.http("GET", "/readyz", api_key=None).status == 200
    used["HttpApiRole"] = iam.actions_used(counter.snapshot())

    counter = counted("JobWorkerRole")
    jobs.requests.drain(jobs.worker)  # the test.fail job fails once, is retried after its backoff
    _poll_until(jobs.requests, jobs.worker)
    used["JobWorkerRole"] = iam.actions_used(counter.snapshot())

    counter = counted("JobResultsRole")
    jobs.responses.drain(jobs.results)
    used["JobResultsRole"] = iam.actions_used(counter.snapshot())

    assert {"dynamodb:Query", "dynamodb:PutItem", "sqs:SendMessage"} <= used["HttpApiRole"]
    assert {"sqs:ChangeMessageVisibility", "dynamodb:Scan", "sqs:SendMessage", "sqs:ReceiveMessage"} <= used["JobWorkerRole"]
    for role, actions in used.items():
        assert actions <= iam.granted_actions(role), f"{role} not granted: {sorted(actions - iam.granted_actions(role))}"
    for job in jobs.http("GET", "/jobs").json()["jobs"]:
        assert job["status"] in ("succeeded", "cancelled"), job
