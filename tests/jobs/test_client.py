"""JobsClient against the API served by a real uvicorn on 127.0.0.1, with a worker and a result processor running."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from cv_analytics.entrypoints.web import create_app
from cv_analytics.jobs.client import JobsAPIError, JobsClient, JobWaitTimeout

from .conftest import API_KEY, results_for, worker_for


@pytest.fixture
def base_url(wiring) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(create_app(wiring), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def running_service(wiring) -> Iterator[None]:
    worker, processor = worker_for(wiring, wait_seconds=0.2), results_for(wiring)
    processor.consumer.wait_seconds = 0.2
    threads = [threading.Thread(target=part.run, daemon=True) for part in (worker, processor)]
    for thread in threads:
        thread.start()
    yield
    worker.stop()
    processor.stop()
    for thread in threads:
        thread.join(20)


def test_submit_then_wait_for_the_result(base_url, running_service):
    with JobsClient(base_url, API_KEY) as jobs:
        job = jobs.submit("test.echo", {"value": "hello"})
        assert job["status"] == "queued"
        done = jobs.wait(job["jobId"], timeout=30)
        assert done["status"] == "succeeded" and done["result"] == {"echo": "hello", "attempt": 1}
        assert jobs.get(job["jobId"]) == done
        assert [j["jobId"] for j in jobs.list(status="succeeded")["jobs"]] == [job["jobId"]]
        with pytest.raises(JobsAPIError) as finished:
            jobs.cancel(job["jobId"])
        assert finished.value.status_code == 409 and "succeeded" in str(finished.value)


def test_idempotency_key_replays_and_conflicts(base_url):
    with JobsClient(base_url, API_KEY) as jobs:
        first = jobs.submit("test.echo", {"value": "a"}, idempotency_key="k")
        assert jobs.submit("test.echo", {"value": "a"}, idempotency_key="k")["jobId"] == first["jobId"]
        with pytest.raises(JobsAPIError) as conflict:
            jobs.submit("test.echo", {"value": "b"}, idempotency_key="k")
        assert conflict.value.status_code == 409


def test_errors_name_the_status_and_the_detail(base_url):
    with JobsClient(base_url, API_KEY) as jobs:
        with pytest.raises(JobsAPIError) as missing:
            jobs.get("no-such-job")
        assert missing.value.status_code == 404 and "no job no-such-job" in missing.value.detail
        with pytest.raises(JobsAPIError) as invalid:
            jobs.submit("test.echo", {"value": 3})
        assert invalid.value.status_code == 422 and invalid.value.detail[0]["loc"] == ["body", "input", "value"]
    with JobsClient(base_url, "wrong-key") as stranger, pytest.raises(JobsAPIError) as refused:
        stranger.list()
    assert refused.value.status_code == 401


def test_wait_gives_up_after_its_timeout_and_cancel_stops_a_queued_job(base_url):
    with JobsClient(base_url, API_KEY) as jobs:  # no worker: the job stays queued
        job = jobs.submit("test.echo", {"value": "x"})
        with pytest.raises(JobWaitTimeout) as late:
            jobs.wait(job["jobId"], timeout=0.5)
        assert late.value.job["status"] == "queued"
        assert jobs.cancel(job["jobId"])["status"] == "cancelled"
        assert jobs.wait(job["jobId"], timeout=5)["status"] == "cancelled"
