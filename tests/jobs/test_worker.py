"""Submit → request queue → worker → response queue → result processor → the job store, on SQLite."""

from __future__ import annotations

import json
import time

import pytest

from cv_analytics.jobs import JobRequest, JobResult, JobStatus
from cv_analytics.jobs.queue_helpers import queue_message_count, send_job_result
from cv_analytics.queues.base import FAILURE_REASON_ATTRIBUTE
from cv_analytics.queues.batch import Status

from .conftest import drain, in_thread, peek_all, results_for, worker_for


def test_submit_puts_one_request_on_the_request_queue(service, request_queue):
    job, created = service.submit("test.echo", {"value": "hi"})
    assert created and job.status is JobStatus.QUEUED
    (message,) = peek_all(request_queue)
    request = JobRequest.from_body(message.body)
    assert (request.job_id, request.type, request.input) == (job.job_id, "test.echo", {"value": "hi", "sleep": 0.0, "record": None})


def test_a_job_runs_and_its_result_reaches_the_store_through_the_response_queue(wiring, service, request_queue, response_queue):
    job, _ = service.submit("test.echo", {"value": "hi"})
    stats = worker_for(wiring).run(drain=True)
    assert stats.succeeded == 1 and queue_message_count(request_queue) == 0
    (message,) = peek_all(response_queue)
    result = JobResult.from_body(message.body)
    assert result.status is JobStatus.SUCCEEDED and result.result == {"echo": "hi", "attempt": 1}
    assert service.get(job.job_id).status is JobStatus.RUNNING  # not until the result processor applies it
    assert results_for(wiring).run(drain=True).applied == 1
    done = service.get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and done.result == {"echo": "hi", "attempt": 1}
    assert done.attempts == 1 and done.started_at is not None and done.finished_at >= done.started_at


def test_a_failing_handler_is_retried_with_backoff_then_dead_lettered_and_dead_with_the_reason(wiring, service, request_queue):
    job, _ = service.submit("test.fail", {})
    worker = worker_for(wiring)
    first = worker.run_once()
    assert first.items[0].status is Status.TRANSIENT and first.items[0].retry_delay > 0
    waiting = service.get(job.job_id)
    assert waiting.status is JobStatus.QUEUED and "boom on attempt 1" in waiting.error
    # the backoff: the message is not visible at once
    attributes = request_queue.attributes()
    assert attributes.visible == 0 and attributes.in_flight + attributes.delayed == 1
    drain(wiring)
    dead = service.get(job.job_id)
    assert dead.status is JobStatus.DEAD and dead.attempts == 3
    assert "failed on receive 3 of 3" in dead.error and "boom on attempt 3" in dead.error
    (dead_letter,) = peek_all(request_queue.dead_letter_queue)
    assert "boom on attempt 3" in dead_letter.attributes[FAILURE_REASON_ATTRIBUTE]
    assert JobRequest.from_body(dead_letter.body).job_id == job.job_id


def test_a_job_that_fails_twice_then_works_succeeds_on_its_third_attempt(wiring, service):
    job, _ = service.submit("test.fail", {"failures": 2})
    drain(wiring)
    done = service.get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and done.result == {"attempt": 3} and done.error is None


def test_a_permanent_error_fails_the_job_at_once_without_retrying(wiring, service, request_queue):
    job, _ = service.submit("test.fail", {"permanent": True})
    stats = worker_for(wiring).run(drain=True)
    assert stats.messages == 1 and stats.failed == 1
    results_for(wiring).run(drain=True)
    failed = service.get(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.attempts == 1 and failed.error == "the input can never work"
    (dead_letter,) = peek_all(request_queue.dead_letter_queue)
    assert "the input can never work" in dead_letter.attributes[FAILURE_REASON_ATTRIBUTE]


def test_input_that_no_longer_validates_when_it_runs_fails_the_job_at_once(wiring, service):
    job = wiring.job_store.create("late", "test.echo", {"value": 5})[0]  # written past the submission's check
    from cv_analytics.jobs.queue_helpers import send_job_request
    from cv_analytics.wiring import JOBS_REQUEST_QUEUE

    send_job_request(wiring.queue(JOBS_REQUEST_QUEUE), job)
    drain(wiring)
    failed = service.get("late")
    assert failed.status is JobStatus.FAILED and "input.value" in failed.error and failed.attempts == 1


def test_a_request_that_is_not_json_goes_to_the_dead_letter_queue_and_the_worker_goes_on(wiring, service, request_queue):
    request_queue.send("{not json")
    request_queue.send(json.dumps({"jobId": "never-submitted", "type": "test.echo", "input": {}}))
    job, _ = service.submit("test.echo", {"value": "after"})
    drain(wiring)
    assert service.get(job.job_id).status is JobStatus.SUCCEEDED
    reasons = sorted(m.attributes[FAILURE_REASON_ATTRIBUTE] for m in peek_all(request_queue.dead_letter_queue))
    assert len(reasons) == 2 and any("never-submitted" in r for r in reasons)


def test_a_duplicate_request_runs_the_job_once(wiring, service, request_queue, tmp_path):
    record = tmp_path / "runs.jsonl"
    job, _ = service.submit("test.echo", {"value": "x", "record": str(record)})
    (message,) = peek_all(request_queue)
    request_queue.send(message.body)  # the standard queue's at-least-once delivery, made certain
    stats = worker_for(wiring).run(drain=True)
    results_for(wiring).run(drain=True)
    assert stats.messages == 2 and stats.duplicates == 1
    assert [json.loads(line)["event"] for line in record.read_text().splitlines()] == ["start", "end"]
    assert service.get(job.job_id).attempts == 1


def test_a_cancelled_queued_job_never_runs(wiring, service, tmp_path):
    record = tmp_path / "runs.jsonl"
    job, _ = service.submit("test.echo", {"value": "x", "record": str(record)})
    assert service.cancel(job.job_id).status is JobStatus.CANCELLED
    stats = worker_for(wiring).run(drain=True)
    assert stats.cancelled == 1 and not record.exists()
    assert service.get(job.job_id).status is JobStatus.CANCELLED


def test_a_running_job_is_told_to_cancel_and_ends_cancelled(wiring, service):
    job, _ = service.submit("test.slow", {"seconds": 30})
    worker = worker_for(wiring)
    thread = in_thread(lambda: worker.run_once())
    _until(lambda: service.get(job.job_id).progress is not None)
    told = service.cancel(job.job_id)
    assert told.status is JobStatus.RUNNING and told.cancel_requested
    thread.join(20)
    assert not thread.is_alive()
    results_for(wiring).run(drain=True)
    assert service.get(job.job_id).status is JobStatus.CANCELLED


def test_a_handler_that_ignores_the_cancel_still_ends_cancelled(wiring, service):
    job, _ = service.submit("test.slow", {"seconds": 0.5, "obey_cancel": False})
    thread = in_thread(lambda: worker_for(wiring).run_once())
    _until(lambda: service.get(job.job_id).status is JobStatus.RUNNING)
    service.cancel(job.job_id)
    thread.join(20)
    results_for(wiring).run(drain=True)
    cancelled = service.get(job.job_id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.result is None


def test_progress_shows_while_the_job_runs(wiring, service):
    job, _ = service.submit("test.slow", {"seconds": 1.0})
    thread = in_thread(lambda: worker_for(wiring).run_once())
    _until(lambda: (service.get(job.job_id).progress or 0) >= 3)
    running = service.get(job.job_id)
    assert running.status is JobStatus.RUNNING and running.progress_message.startswith("step ")
    thread.join(20)
    results_for(wiring).run(drain=True)
    assert service.get(job.job_id).progress == 100


def test_a_job_running_past_the_visibility_timeout_is_kept_alive_by_its_heartbeat(make_wiring, tmp_path):
    env = {"CV_ANALYTICS_JOBS_VISIBILITY_TIMEOUT": "1"}
    wiring, other = make_wiring(**env), make_wiring(**env)
    record = tmp_path / "runs.jsonl"
    job, _ = wiring.job_service().submit("test.echo", {"value": "long", "sleep": 3.0, "record": str(record)})
    first = worker_for(wiring)
    thread = in_thread(lambda: first.run_once())
    rival = worker_for(other)
    _until(lambda: record.exists())
    rival_seen = 0
    while thread.is_alive():  # a second worker polls the same queue all along
        rival_seen += len(rival.run_once(wait_seconds=0.2).items)
    results_for(wiring).run(drain=True)
    done = wiring.job_service().get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 1
    assert rival_seen == 0
    assert [json.loads(line)["event"] for line in record.read_text().splitlines()] == ["start", "end"]


def test_a_job_past_its_timeout_fails_for_good(make_wiring):
    from cv_analytics.jobs import JobType

    wiring = make_wiring()
    slow = wiring.job_registry.get("test.slow")
    wiring.job_registry.add(JobType("test.too-slow", slow.input_model, slow.run, timeout_seconds=0.3))
    job, _ = wiring.job_service().submit("test.too-slow", {"seconds": 5, "obey_cancel": True})
    drain(wiring)
    failed = wiring.job_service().get(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error == "timed out after 0.3s" and failed.attempts == 1


def test_duplicate_and_late_results_never_move_a_job_backwards(wiring, service, response_queue):
    job, _ = service.submit("test.echo", {"value": "x"})
    drain(wiring)
    send_job_result(response_queue, job.job_id, JobStatus.SUCCEEDED, result={"echo": "again"}, attempt=1)
    send_job_result(response_queue, job.job_id, JobStatus.FAILED, error="late failure", attempt=1)
    send_job_result(response_queue, job.job_id, JobStatus.DEAD, error="late death", attempt=1)
    stats = results_for(wiring).run(drain=True)
    assert stats.ignored == 3 and stats.applied == 0
    done = service.get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and done.result == {"echo": "x", "attempt": 1} and done.error is None


def test_a_result_arriving_before_the_job_is_claimed_still_finishes_it_once(wiring, service, response_queue):
    job, _ = service.submit("test.echo", {"value": "x"})
    send_job_result(response_queue, job.job_id, JobStatus.SUCCEEDED, result={"early": True})
    send_job_result(response_queue, job.job_id, JobStatus.SUCCEEDED, result={"early": True})
    assert results_for(wiring).run(drain=True).applied == 1
    drain(wiring)  # the request finds the job finished: not run
    assert service.get(job.job_id).result == {"early": True} and service.get(job.job_id).attempts == 0


def test_a_cancelled_job_stays_cancelled_whatever_result_comes_late(wiring, service, response_queue):
    job, _ = service.submit("test.echo", {"value": "x"})
    service.cancel(job.job_id)
    send_job_result(response_queue, job.job_id, JobStatus.SUCCEEDED, result={"late": True})
    results_for(wiring).run(drain=True)
    assert service.get(job.job_id).status is JobStatus.CANCELLED


@pytest.mark.parametrize(
    "body",
    ["not json", "{}", json.dumps({"jobId": "x", "status": "running"}), json.dumps({"jobId": "unknown-job", "status": "succeeded"})],
)
def test_a_result_that_cannot_be_applied_goes_to_the_dead_letter_queue_with_its_reason(wiring, service, response_queue, body):
    response_queue.send(body)
    job, _ = service.submit("test.echo", {"value": "x"})
    drain(wiring)
    assert service.get(job.job_id).status is JobStatus.SUCCEEDED
    (dead_letter,) = peek_all(response_queue.dead_letter_queue)
    assert dead_letter.body == body and dead_letter.attributes[FAILURE_REASON_ATTRIBUTE]


def _until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_the_dead_letter_sweep_leaves_jobs_someone_holds_and_finished_ones(wiring, service, request_queue):
    from cv_analytics.jobs.worker import settle_dead_letters

    held, _ = service.submit("test.echo", {"value": "held"})
    done, _ = service.submit("test.echo", {"value": "done"})
    lost, _ = service.submit("test.echo", {"value": "lost"})
    for message in request_queue.receive(10, wait_seconds=0):
        request_queue.dead_letter(message, "gave up")
    wiring.job_store.claim(held.job_id, "alive", 600)
    wiring.job_store.finish(done.job_id, JobStatus.SUCCEEDED, result={})
    assert settle_dead_letters(wiring.job_store, request_queue) == 1
    assert settle_dead_letters(wiring.job_store, request_queue) == 0  # once
    assert service.get(held.job_id).status is JobStatus.RUNNING
    assert service.get(done.job_id).status is JobStatus.SUCCEEDED
    lost_now = service.get(lost.job_id)
    assert lost_now.status is JobStatus.DEAD and lost_now.error == "dead-lettered by the queue: gave up"
