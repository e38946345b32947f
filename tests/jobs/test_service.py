"""The jobs service without HTTP: waiting, and a request the queue refuses."""

from __future__ import annotations

import threading

import pytest

from cv_analytics.exceptions import MessageTooLargeError
from cv_analytics.jobs import JobStatus
from cv_analytics.queues.base import MAX_MESSAGE_BYTES


def test_wait_returns_when_the_job_changes_in_this_process(service):
    job, _ = service.submit("test.echo", {"value": "x"})
    threading.Timer(0.2, lambda: service.cancel(job.job_id)).start()
    assert service.wait(job.job_id, 20).status is JobStatus.CANCELLED


def test_wait_with_the_current_etag_returns_the_same_job_after_its_timeout(service):
    job, _ = service.submit("test.echo", {"value": "x"})
    same = service.wait(job.job_id, 0.2, known_etag=job.etag)
    assert same.etag == job.etag and same.status is JobStatus.QUEUED


def test_wait_with_an_old_etag_or_on_a_finished_job_returns_at_once(service, wiring):
    job, _ = service.submit("test.echo", {"value": "x"})
    wiring.job_store.claim(job.job_id, "w", 60)
    assert service.wait(job.job_id, 20, known_etag=job.etag).status is JobStatus.RUNNING
    wiring.job_store.finish(job.job_id, JobStatus.SUCCEEDED, result={})
    assert service.wait(job.job_id, 20).status is JobStatus.SUCCEEDED


def test_a_job_too_large_for_a_message_fails_and_frees_its_idempotency_key(service, wiring, request_queue):
    huge = {"value": "x" * 900, "record": "y" * MAX_MESSAGE_BYTES}
    with pytest.raises(MessageTooLargeError):
        service.submit("test.echo", huge, idempotency_key="big")
    (failed,) = wiring.job_store.list_jobs().jobs
    assert failed.status is JobStatus.FAILED and "could not be enqueued" in failed.error
    assert request_queue.attributes().visible == 0
    retried, created = service.submit("test.echo", {"value": "small"}, idempotency_key="big")
    assert created and retried.job_id != failed.job_id
