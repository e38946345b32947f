"""Workers as separate processes: killed with SIGKILL mid-job, and two on one queue."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from cv_analytics.jobs import JobStatus

from .conftest import results_for, worker_for

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _start_worker(wiring, **env: str) -> subprocess.Popen[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CV_ANALYTICS_", "AWS_", "AI_JOB_"))},
        "CV_ANALYTICS_DATA_DIR": str(wiring.settings.data_dir),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.worker_process"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("ready"), process.stderr.read()
    return process


def _runs(record: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def _until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_worker_killed_mid_job_leaves_the_job_to_come_back_and_complete_exactly_once(make_wiring, tmp_path):
    env = {"CV_ANALYTICS_JOBS_VISIBILITY_TIMEOUT": "2", "CV_ANALYTICS_JOBS_RETRY_BASE": "0.1"}
    wiring = make_wiring(**env)
    record = tmp_path / "runs.jsonl"
    job, _ = wiring.job_service().submit("test.echo", {"value": "survivor", "sleep": 1.5, "record": str(record)})
    doomed = _start_worker(wiring, **env)
    try:
        _until(lambda: _runs(record))
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    finally:
        _stop(doomed)
    assert [r["event"] for r in _runs(record)] == ["start"]
    assert wiring.job_service().get(job.job_id).status is JobStatus.RUNNING  # held by a dead worker's lease

    worker = worker_for(wiring, wait_seconds=0.5)
    deadline = time.monotonic() + 30
    while not any(r["event"] == "end" for r in _runs(record)) and time.monotonic() < deadline:
        worker.run_once()  # nothing until the message's visibility timeout brings it back
    processor = results_for(wiring)
    processor.run(drain=True)
    done = wiring.job_service().get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2
    assert done.result == {"echo": "survivor", "attempt": 2}
    runs = _runs(record)
    assert [r["event"] for r in runs] == ["start", "start", "end"] and runs[0]["pid"] == doomed.pid
    assert processor.stats.applied == 1 and processor.stats.ignored == 0


def test_a_job_whose_worker_is_killed_on_every_receive_ends_dead_with_the_queues_reason(make_wiring, tmp_path):
    env = {"CV_ANALYTICS_JOBS_VISIBILITY_TIMEOUT": "1"}
    wiring = make_wiring(**env)
    record = tmp_path / "runs.jsonl"
    job, _ = wiring.job_service().submit("test.echo", {"value": "doomed", "sleep": 30, "record": str(record)})
    for attempt in range(1, 4):
        process = _start_worker(wiring, **env)
        try:
            _until(lambda: len(_runs(record)) == attempt)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        finally:
            _stop(process)
    assert wiring.job_service().get(job.job_id).status is JobStatus.RUNNING  # no worker lived to say otherwise
    worker_for(wiring).run(drain=True)  # the queue moves the request to its DLQ; the worker's sweep settles the job
    dead = wiring.job_service().get(job.job_id)
    assert dead.status is JobStatus.DEAD and dead.attempts == 3
    assert "dead-lettered by the queue: maxReceiveCount 3 exceeded" in dead.error
    assert len(_runs(record)) == 3 and all(run["event"] == "start" for run in _runs(record))


def test_two_workers_on_one_queue_never_run_a_job_at_the_same_time(make_wiring, tmp_path):
    # A visibility timeout shorter than the jobs, and every request delivered twice: only the
    # claims and heartbeats keep two runs of one job from overlapping.
    env = {"CV_ANALYTICS_JOBS_VISIBILITY_TIMEOUT": "1", "CV_ANALYTICS_JOBS_RETRY_BASE": "0.1"}
    wiring = make_wiring(**env)
    record = tmp_path / "runs.jsonl"
    service = wiring.job_service()
    from cv_analytics.wiring import JOBS_REQUEST_QUEUE

    request_queue = wiring.queue(JOBS_REQUEST_QUEUE)
    jobs = []
    for i in range(12):
        job, _ = service.submit("test.echo", {"value": str(i), "sleep": 0.3 if i % 3 else 1.5, "record": str(record)})
        jobs.append(job.job_id)
    for message in request_queue.peek(100):
        request_queue.send(message.body)
    workers = [_start_worker(wiring, **env) for _ in range(2)]
    try:
        processor = results_for(wiring)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            processor.run_once(wait_seconds=0.2)
            if all(service.get(job_id).finished for job_id in jobs):
                break
        attributes = request_queue.attributes
        _until(lambda: attributes().visible + attributes().in_flight + attributes().delayed == 0)
    finally:
        for process in workers:
            _stop(process)
    for job_id in jobs:
        assert service.get(job_id).status is JobStatus.SUCCEEDED, service.get(job_id)
    runs: dict[str, list[dict]] = defaultdict(list)
    for run in _runs(record):
        runs[run["job"]].append(run)
    assert set(runs) == set(jobs)
    pids = {run["pid"] for job_runs in runs.values() for run in job_runs}
    assert len(pids) == 2  # both workers did work
    for job_id, job_runs in runs.items():
        events = [run["event"] for run in sorted(job_runs, key=lambda r: (r["at"], r["event"] == "start"))]
        assert events == ["start", "end"] * (len(events) // 2), f"overlapping runs of {job_id}: {job_runs}"
        assert events.count("end") == 1, f"job {job_id} ran to its end {events.count('end')} times"
    assert not request_queue.dead_letter_queue.peek(10)


def test_sigterm_finishes_the_job_in_hand(make_wiring, tmp_path):
    wiring = make_wiring()
    record = tmp_path / "runs.jsonl"
    job, _ = wiring.job_service().submit("test.echo", {"value": "x", "sleep": 1.0, "record": str(record)})
    process = _start_worker(wiring)
    _until(lambda: _runs(record))
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert [r["event"] for r in _runs(record)] == ["start", "end"]
    results_for(wiring).run(drain=True)
    assert wiring.job_service().get(job.job_id).status is JobStatus.SUCCEEDED
    # nothing was left to retry
    assert worker_for(wiring).run_once().items == []
