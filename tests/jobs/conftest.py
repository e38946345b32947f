"""The jobs service on its embedded backends (SQLite queue and job store) in a fresh data directory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cv_analytics.jobs import JobService, JobWorker, ResultProcessor
from cv_analytics.queues.base import Message, Queue
from cv_analytics.wiring import JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, Settings, Wiring, job_worker, result_processor

from .types_for_tests import register_test_types

API_KEY = "test-key"


def jobs_settings(tmp_path: Any, **env: str) -> Settings:
    return Settings.from_env({"CV_ANALYTICS_API_KEYS": API_KEY, **env}, data_dir=tmp_path / "data")


@pytest.fixture
def make_wiring(tmp_path) -> Iterator[Callable[..., Wiring]]:
    """Wirings over one data directory (each like one process), with the test job types; closed after the test."""
    made: list[Wiring] = []

    def make(**env: str) -> Wiring:
        wiring = Wiring(jobs_settings(tmp_path, **env))
        register_test_types(wiring.job_registry)
        made.append(wiring)
        return wiring

    yield make
    for wiring in made:
        wiring.close()


@pytest.fixture
def wiring(make_wiring) -> Wiring:
    """Request visibility timeout 2 s, first retry after about 0.1 s."""
    return make_wiring(CV_ANALYTICS_JOBS_VISIBILITY_TIMEOUT="2", CV_ANALYTICS_JOBS_RETRY_BASE="0.1")


@pytest.fixture
def service(wiring) -> JobService:
    return wiring.job_service()


@pytest.fixture
def request_queue(wiring) -> Queue:
    return wiring.queue(JOBS_REQUEST_QUEUE)


@pytest.fixture
def response_queue(wiring) -> Queue:
    return wiring.queue(JOBS_RESPONSE_QUEUE)


def worker_for(wiring: Wiring, **options: Any) -> JobWorker:
    options.setdefault("wait_seconds", 0.0)
    return job_worker(wiring, **options)


def results_for(wiring: Wiring) -> ResultProcessor:
    return result_processor(wiring, wait_seconds=0.0)


def drain(wiring: Wiring) -> None:
    """Run the worker and the result processor until both queues are empty (retries included)."""
    worker_for(wiring).run(drain=True)
    results_for(wiring).run(drain=True)


def peek_all(queue: Queue) -> list[Message]:
    return queue.peek(100)


def in_thread(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
