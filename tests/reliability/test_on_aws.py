"""Scenarios 1, 4, 5 and 8 of the fault suite on the AWS backends: SQS, DynamoDB and SES on moto.

The Lambda handlers are driven as the SQS event source mapping drives them
(:mod:`tests.aws_e2e.lambda_poller`: batches of up to 10, Lambda's event, the partial batch
response, the delete of the rest), in a process of their own where a scenario kills the
function (:mod:`.aws_poller`). moto is slow (every send to a FIFO queue computes the queue's
attributes over all its messages, so a deep queue costs tens of milliseconds a message), so the
traffic is scaled down from the embedded scenarios' (each row says how much), and the queues'
visibility timeouts are shortened (as an operator may) so that what a crash leaves in flight
comes back within the test. Processes that write to moto at the same time reach it through a
proxy that forwards one request at a time (see ``moto_one_at_a_time``).
"""

from __future__ import annotations

import json
import os
import pathlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cv_analytics.client import AnalyticsClient
from cv_analytics.entrypoints import aws_lambda as handlers
from cv_analytics.jobs import JobRequest
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE, RECEIVE_COUNT_ATTRIBUTE
from cv_analytics.wiring import Settings, Wiring, open_queue, open_store
from tests.aws_e2e.conftest import OWNER, Deployment, aws, closed_port_url  # noqa: F401 - the fixtures
from tests.aws_e2e.lambda_poller import LambdaContext
from tests.aws_e2e.test_weekly_report import QUESTIONS, RUN_TIME, WEEK, scheduled_event
from tests.jobs.types_for_tests import register_test_types

from .harness import (
    REPOSITORY_ROOT,
    WEEK_START_MS,
    CliProcess,
    Survived,
    Tally,
    assert_exactly_once,
    contract_traffic,
    random_moments,
    read_ledger,
    record_survived,
    tally_interactions,
    tally_jobs,
    wait_until,
)
from .moto_serial import SerialProxy

pytestmark = pytest.mark.slow

BACKEND = "aws (moto)"
#: What a crashed invocation's messages wait before SQS gives them to the next one (the stack's is 300 s).
VISIBILITY_SECONDS = 2


def _poller_env(deployment: Deployment, endpoint: str, **extra: str) -> dict[str, str]:
    """A function's environment: the stack's variables, ``endpoint`` for AWS, dummy credentials, this tree first."""
    path = os.pathsep.join([str(REPOSITORY_ROOT / "src"), str(REPOSITORY_ROOT)])
    return {**os.environ, **deployment.env, "AWS_ENDPOINT_URL": endpoint, "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1", **extra}  # fmt: skip


def _poller(env: dict[str, str], handler: str, queue_url: str, logs: pathlib.Path, *options: str) -> CliProcess:
    process = CliProcess(
        env, handler, queue_url, *options, log_dir=logs, name=handler, module="tests.reliability.aws_poller", cwd=REPOSITORY_ROOT
    )
    process.wait_for_output("polling", timeout=60)
    return process


def _shorten_visibility(deployment: Deployment, url: str, seconds: int = VISIBILITY_SECONDS) -> None:
    deployment.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(seconds)})


def _drained(deployment: Deployment, url: str) -> bool:
    return deployment.queue_counts(url) == (0, 0)


@pytest.fixture
def logs(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "logs"


@pytest.fixture
def moto_one_at_a_time(aws: Deployment) -> Iterator[str]:  # noqa: F811 - the fixture
    """moto's endpoint through a proxy that forwards one request at a time (see :mod:`.moto_serial`)."""
    proxy = SerialProxy(aws.endpoint)
    try:
        yield proxy.url
    finally:
        proxy.close()


def _client(deployment: Deployment, endpoint: str) -> AnalyticsClient:
    """The real client, sending to the analytics queue through ``endpoint`` (as the chatbot would)."""
    settings = Settings.from_env({**deployment.env, "AWS_ENDPOINT_URL": endpoint})
    client = AnalyticsClient(lambda: open_queue(settings), spool_dir=deployment.data_dir / "spool")
    deployment.clients.append(client)  # closed by the fixture
    return client


def _until_redelivered(poller: CliProcess, killed_at: float | None, drained: Any) -> None:
    """Until ``poller`` has answered a batch received after what the last kill left in flight was visible again.

    SQS gives the oldest messages first, so that batch holds them: the next kill does not land on the same
    messages again. Three kills on one message spend its three receives and SQS dead-letters it, as on
    AWS, where a function crashing on the same batch again and again is what the DLQ is for.
    """
    poller.wait_for_output("polled 1", timeout=120)  # warm: its first batch done
    if killed_at is None:
        return
    time.sleep(max(0.0, killed_at + VISIBILITY_SECONDS + 0.2 - time.monotonic()))
    answered = poller.stderr().count("polled ")
    wait_until(lambda: poller.stderr().count("polled ") > answered or drained(), 120, what="a batch after the redelivery")


def _log_paced(client: AnalyticsClient, events: list[dict[str, Any]], *, per_tick: int = 10, tick: float = 0.05) -> None:
    """The chatbot's steady traffic (at most 200 events/s), not a burst: moto's sends to a FIFO queue
    cost more the deeper it is (each computes the queue's attributes over all its messages)."""
    for start in range(0, len(events), per_tick):
        for event in events[start : start + per_tick]:
            client.log(event)
        time.sleep(tick)


def _dead_letters(deployment: Deployment, url: str) -> list[tuple[str, dict[str, str]]]:
    """What a DLQ holds (up to 10): each body with its message attributes (the reason, the receive count)."""
    found = deployment.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", [])
    return [(m["Body"], {k: v.get("StringValue", "") for k, v in m.get("MessageAttributes", {}).items()}) for m in found]


def _in_flight(deployment: Deployment, url: str) -> int:
    return deployment.queue_counts(url)[1]


def _interactions(deployment: Deployment, ids: list[str]) -> Tally:
    store = open_store(deployment.settings)
    try:
        return tally_interactions(store, ids)
    finally:
        store.close()


# -- 1. the analytics function killed mid-batch --------------------------------------------------


def test_analytics_lambda_killed_at_random_moments_loses_and_duplicates_nothing(
    aws: Deployment, moto_one_at_a_time: str, logs: pathlib.Path  # noqa: F811 - the fixture
) -> None:
    kills, seed, pairs = 4, 101, 250
    traffic = contract_traffic(pairs, sessions=97, seed=seed, prefix="aws-kill-")
    _shorten_visibility(aws, aws.queue_url)
    env = _poller_env(aws, moto_one_at_a_time)
    client = _client(aws, moto_one_at_a_time)
    killed_mid_batch = 0
    poller = _poller(env, "analytics", aws.queue_url, logs)
    sender = threading.Thread(target=_log_paced, args=(client, traffic.events))
    sender.start()  # the chatbot logs while the function works and crashes
    try:
        killed_at = None
        for lifetime in random_moments(kills, low=0.1, high=1.0, seed=seed):
            _until_redelivered(poller, killed_at, lambda: _drained(aws, aws.queue_url))
            time.sleep(lifetime)
            killed_mid_batch += _in_flight(aws, aws.queue_url) > 0
            poller.kill()
            killed_at = time.monotonic()
            poller = _poller(env, "analytics", aws.queue_url, logs)
        sender.join()
        assert client.flush(timeout=300), client.stats()
        wait_until(lambda: _drained(aws, aws.queue_url), 300, what="the analytics queue to drain", interval=0.2)
    finally:
        poller.kill()
    tally = _interactions(aws, traffic.correlation_ids)
    dead = aws.queue_counts(aws.dlq_url)[0]
    record_survived(
        Survived(
            "1. analytics worker kill -9",
            f"the analytics Lambda's container (a poller process) SIGKILLed ×{kills}, each 0.1–1 s (seed {seed}) after "
            f"the batch that took back what the last kill left, {killed_mid_batch} with messages in flight; "
            f"visibility timeout {VISIBILITY_SECONDS} s",
            f"{len(traffic):,} events ({pairs:,} interactions, 97 sessions, 10 % responses first) "
            "logged by the client at up to 200/s to SQS FIFO on moto while the function ran, batches of 10",
            tally.lost,
            tally.duplicated,
            notes=f"{dead} in the DLQ",
            backend=BACKEND,
        )
    )
    assert_exactly_once(tally, f"interactions in DynamoDB (dead letters: {_dead_letters(aws, aws.dlq_url)})")
    assert dead == 0, "a crash is no reason to dead-letter anything"
    assert killed_mid_batch > 0


# -- 4. poison messages among good traffic -------------------------------------------------------

def _poison(session: str) -> list[tuple[str, str, str]]:
    """(kind, body, what its DLQ reason must name): each can never be recorded."""
    at = WEEK_START_MS + 5_000
    base = {"eventType": "query", "correlationId": str(uuid.uuid4()), "timestamp": at, "sessionId": session, "query": "q"}
    deep = '{"eventType":"query","correlationId":"deep","timestamp":%d,"sessionId":"%s","query":"q","metadata":{"a":%s%s}}' % (
        at, session, "[" * 5_000, "]" * 5_000,
    )  # fmt: skip
    return [
        ("malformed", '{"eventType": "query", "correlationId": ', "JSON"),
        ("not an object", "[1, 2, 3]", "JSON object"),
        ("invalid (fields missing)", json.dumps({"eventType": "query", "sessionId": session}), "correlationId"),
        ("unknown type", json.dumps({**base, "eventType": "click"}), "eventType"),
        ("deeply nested", deep, "deep"),
        ("oversized id", json.dumps({**base, "correlationId": "c" * 300}), "correlationId"),
        ("wrong types", json.dumps({**base, "timestamp": "yesterday", "query": 42}), "timestamp"),
    ]


def test_poison_messages_are_dead_lettered_on_their_first_receive_and_their_sessions_complete(
    aws: Deployment,  # noqa: F811 - the fixture
) -> None:
    pairs, sessions = 100, 20
    traffic = contract_traffic(pairs, sessions=sessions, seed=4, prefix="aws-poison-")
    half = len(traffic.events) // 2
    client = aws.analytics_client()
    for event in traffic.events[:half]:
        client.log(event)
    assert client.flush(timeout=120)
    poison: dict[str, tuple[str, str, str]] = {}
    for index in range(len(_poison(""))):
        session = f"aws-poison-session-{index * 3 % sessions:03d}"  # among a session's events, before its later ones
        kind, body, named = _poison(session)[index]
        sent = aws.sqs.send_message(
            QueueUrl=aws.queue_url, MessageBody=body, MessageGroupId=session, MessageDeduplicationId=f"poison-{index}"
        )
        poison[sent["MessageId"]] = (kind, body, named)
    for event in traffic.events[half:]:
        client.log(event)
    assert client.flush(timeout=120)

    polls = aws.mapping().drain(handlers.process_analytics)

    retried = [message_id for poll in polls for message_id in poll.failed]
    dead = {body: attributes for body, attributes in _dead_letters(aws, aws.dlq_url)}
    tally = _interactions(aws, traffic.correlation_ids)
    wrong = [kind for kind, body, named in poison.values()
             if body not in dead or dead[body].get(RECEIVE_COUNT_ATTRIBUTE) != "1"
             or named.lower() not in dead[body].get(FAILURE_REASON_ATTRIBUTE, "").lower()]  # fmt: skip
    record_survived(
        Survived(
            "4. poison messages",
            f"{len(poison)} poison messages (malformed JSON, not an object, fields missing, unknown type, "
            "5,000 deep, 300-character id, wrong types) sent to SQS in the middle of their sessions",
            f"{len(traffic):,} good events ({pairs} interactions, {sessions} sessions) by the client, half after the poison",
            tally.lost,
            tally.duplicated,
            notes=f"{len(dead)} of {len(poison)} in the DLQ with their reason on receive 1; "
            f"{len(retried)} messages reported for retry",
            backend=BACKEND,
        )
    )
    assert_exactly_once(tally, "good interactions in DynamoDB")
    assert wrong == [], f"not dead-lettered at once with a reason naming the problem: {wrong}; DLQ: {dead}"
    assert len(dead) == len(poison) and retried == []
    assert aws.queue_counts(aws.queue_url) == (0, 0)


# -- 5. SES down on report day -------------------------------------------------------------------


def test_ses_down_on_report_day_fails_the_invocation_and_the_retry_sends_once(
    aws: Deployment, closed_port_url: str  # noqa: F811 - the fixture
) -> None:
    from cv_analytics.exceptions import ReportDeliveryError

    client = aws.analytics_client()
    ids = []
    for day, (question, quality) in enumerate(QUESTIONS):
        asked = 1_795_338_000_000 + day * 86_400_000  # 2026-W47, a question a day
        ids.append(client.log_query(question, session_id=f"recruiter-{day % 3}", timestamp=asked))
        client.log_response(ids[-1], "An answer.", session_id=f"recruiter-{day % 3}", timestamp=asked + 900,
                            match_quality=quality)  # fmt: skip
    assert client.flush(timeout=60)
    aws.mapping().drain(handlers.process_analytics)
    event = scheduled_event(RUN_TIME)
    context = LambdaContext(function_name="cv-e2e-weekly-report", remaining_ms=60_000)
    handlers.configure(env={**aws.env, "AWS_ENDPOINT_URL_SES": closed_port_url})  # SES out of reach, DynamoDB not

    failures: list[str] = []
    for _attempt in range(3):  # the first invocation and Lambda's two retries of an asynchronous one
        with pytest.raises(ReportDeliveryError) as failure:
            handlers.weekly_report(event, context)
        failures.append(str(failure.value))
    unsent = open_store(aws.settings).get_report_delivery(WEEK, OWNER)
    handlers.configure(env=aws.env)  # SES back (the on-failure destination's replay, or the next run)
    sent = handlers.weekly_report(event, context)
    again = handlers.weekly_report(event, context)  # EventBridge delivers at least once

    emails = aws.sent_emails()
    record_survived(
        Survived(
            "5. email down on report day",
            "the report Lambda with the SES endpoint out of reach (AWS_ENDPOINT_URL_SES a closed port) for the "
            "invocation and its 2 retries, then SES on moto back; one more invocation after the success",
            f"a week of {len(ids)} interactions, one recipient",
            lost=int(len(emails) == 0),
            duplicated=max(0, len(emails) - 1),
            notes=f"{len(failures)} failed invocations raised ReportDeliveryError; "
            f"{len(emails)} email sent (moto's SES); the last invocation answered {again['status']}",
            backend=BACKEND,
        )
    )
    assert all("could not reach Amazon SES" in text for text in failures), failures
    assert unsent is None, "a failed send records nothing, so the retry sends"
    assert (sent["week"], sent["status"], again["status"]) == (WEEK, "sent", "already_sent")
    assert [m["id"] for m in emails] == [sent["messageId"]]
    assert _interactions(aws, ids).exactly_once


# -- 8. the job worker and the result processor killed ------------------------------------------


def test_job_lambdas_killed_mid_job_and_between_receive_and_delete_run_every_job_to_succeeded_once(
    aws: Deployment, moto_one_at_a_time: str, logs: pathlib.Path, tmp_path: pathlib.Path  # noqa: F811 - the fixture
) -> None:
    jobs, worker_kills, result_kills, seed = 80, 3, 2, 8
    request_url, response_url = aws.env["AI_JOB_REQUEST_QUEUE_URL"], aws.env["AI_JOB_RESPONSE_QUEUE_URL"]
    _shorten_visibility(aws, request_url, 4)  # the lease follows it: a killed run's job is free again in 3.6 s
    _shorten_visibility(aws, response_url)
    env = _poller_env(aws, moto_one_at_a_time, CV_ANALYTICS_JOBS_RETRY_BASE="0.2")
    ledger = tmp_path / "runs.jsonl"
    wiring = Wiring(Settings.from_env({**aws.env, "AWS_ENDPOINT_URL": moto_one_at_a_time}))
    register_test_types(wiring.job_registry)
    service = wiring.job_service()
    worker = _poller(env, "job-requests", request_url, logs)
    results = _poller(env, "job-results", response_url, logs, *KILL_BEFORE_DELETE)
    job_ids: list[str] = []
    submitter = threading.Thread(target=lambda: job_ids.extend(
        service.submit("test.echo", {"value": f"job {i}", "sleep": 0.05, "record": str(ledger)})[0].job_id
        for i in range(jobs)
    ))  # fmt: skip
    submitter.start()
    killed_runs: list[tuple[int, str]] = []  # (pid, job) of the run each kill found under way
    results_killed = 0

    def restart_results_if_it_crashed() -> None:
        nonlocal results, results_killed
        if not results.alive():  # it killed itself before a delete
            results_killed += 1
            options = KILL_BEFORE_DELETE if results_killed < result_kills else ()
            results = _poller(env, "job-results", response_url, logs, *options)

    try:
        for lifetime in random_moments(worker_kills, low=0.5, high=2.5, seed=seed):
            time.sleep(lifetime)
            job = _inside_a_run(ledger, worker.pid, timeout=60)
            worker.kill()
            killed_runs.append((worker.pid, job))
            worker = _poller(env, "job-requests", request_url, logs)
            restart_results_if_it_crashed()
            _until_rerun(ledger, worker, job, lambda: _drained(aws, request_url))
        submitter.join()
        while results_killed < result_kills:
            wait_until(lambda: not results.alive(), 120, what="the result processor's crash before a delete")
            restart_results_if_it_crashed()
        wait_until(lambda: all(_drained(aws, url) for url in (request_url, response_url)), 300,
                   what="both job queues to drain", interval=0.2)  # fmt: skip
    finally:
        worker.kill()
        results.kill()
    tally = tally_jobs(wiring.job_store, job_ids, ledger=ledger)
    runs = read_ledger(ledger)
    ended = {(r["pid"], r["job"]) for r in runs if r["event"] == "end"}
    cut = [run for run in killed_runs if run not in ended]
    # a kill that came just after its run ended (the race of looking, then killing) reruns a finished handler:
    # at least once, as any worker killed before it reports; not a job that succeeded twice
    rerun_after_end = {job for pid, job in killed_runs if (pid, job) in ended}
    duplicated = len(set(tally.details["completedTwice"]) - rerun_after_end) if tally.duplicated else 0
    dead_letters = _dead_letters(aws, aws.env["CV_ANALYTICS_JOB_REQUEST_DLQ_URL"])
    dead_jobs = [wiring.job_store.get(JobRequest.from_body(body).job_id) for body, _ in dead_letters]
    wiring.close()
    record_survived(
        Survived(
            "8. job worker and result processor killed",
            f"the job-requests Lambda's container SIGKILLed ×{worker_kills} inside a job's run (random lifetimes "
            f"0.5–2.5 s, seed {seed}); the job-results one SIGKILLed ×{result_kills} after writing a batch and "
            "before its delete",
            f"{jobs} jobs (test.echo, 50 ms each) submitted while the functions ran, SQS and DynamoDB on moto",
            tally.lost,
            duplicated,
            notes=f"{len(cut)} of {worker_kills} kills cut a run short, run again; {len(dead_letters)} requests "
            f"dead-lettered by SQS (receives spent by kills; their jobs {sorted({j.status.value for j in dead_jobs if j})}); "
            f"final states {tally.details['states']}",
            backend=BACKEND,
        )
    )
    assert (tally.lost, duplicated) == (0, 0), f"jobs in the DynamoDB job store: {tally}"
    assert cut, f"no kill landed inside a run: {killed_runs}"
    assert results_killed == result_kills
    # SQS dead-letters a request whose every receive a kill spent (as on AWS); no job may be lost to it
    assert all(job is not None and job.status.value == "succeeded" for job in dead_jobs), dead_letters


KILL_BEFORE_DELETE = ("--kill-before-delete-on-poll", "2")


def _until_rerun(ledger: pathlib.Path, worker: CliProcess, job: str, drained: Any) -> None:
    """Until the new worker has run the killed job to its end and answered the batch that held it.

    The next kill waits for it, so that kills do not keep landing on the same redelivered batch: three
    kills on one request spend its three receives, and SQS dead-letters it (and the job becomes ``dead``),
    as on AWS, where a function crashing on the same batch again and again is what the DLQ is for.
    """
    wait_until(lambda: any(r["job"] == job and r["pid"] == worker.pid and r["event"] == "end" for r in read_ledger(ledger)),
               120, what=f"job {job} to run again to its end")  # fmt: skip
    answered = worker.stderr().count("polled ")
    wait_until(lambda: worker.stderr().count("polled ") > answered or drained(), 120, what="its batch to be answered")


def _inside_a_run(ledger: pathlib.Path, pid: int, *, timeout: float) -> str:
    """Waits until process ``pid`` is inside a job's handler (its last ledger line a start); that job."""
    inside: dict[str, str] = {}

    def started() -> bool:
        last = [r for r in read_ledger(ledger) if r["pid"] == pid]
        if last and last[-1]["event"] == "start":
            inside["job"] = last[-1]["job"]
            return True
        return False

    wait_until(started, timeout, what=f"process {pid} to be inside a job", interval=0.005)
    return inside["job"]
