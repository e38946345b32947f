"""What is specific to the DynamoDB job store: its items, keys of any length, results of any shape,
lists through the indexes, racing writers, outages.

The job store's rules are in tests/jobs/test_job_store.py, which runs against this backend too.
"""

from __future__ import annotations

import base64
import math
import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.exceptions import StoreError, StoreUnavailableError
from cv_analytics.stores.jobs import JOB_RETENTION_SECONDS, JobStatus
from cv_analytics.stores.jobs.dynamodb import DynamoDBJobStore, created_sort_key, idempotency_item_key, job_key
from cv_analytics.wiring import Settings, Wiring
from tests.aws_backends.moto_envs import make_dynamodb_job_store
from tests.moto_server import REGION


@pytest.fixture
def store(moto_reset: str, clock: ManualClock) -> Iterator[DynamoDBJobStore]:
    made = make_dynamodb_job_store(moto_reset, clock)
    yield made
    made.close()


@pytest.fixture
def other(store: DynamoDBJobStore, moto_reset: str, clock: ManualClock) -> Iterator[DynamoDBJobStore]:
    """Another writer on the same table with a client of its own: another Lambda container."""
    made = DynamoDBJobStore(store.table, endpoint_url=moto_reset, region=REGION, clock=clock)
    yield made
    made.close()


def _item(store: DynamoDBJobStore, key: dict[str, Any]) -> dict[str, Any]:
    client = boto3.client("dynamodb", endpoint_url=store.client.meta.endpoint_url, region_name=REGION)
    try:
        return dict(client.get_item(TableName=store.table, Key=key, ConsistentRead=True).get("Item") or {})
    finally:
        client.close()


def test_a_job_item_carries_its_index_keys_version_and_ttl(store: DynamoDBJobStore, clock: ManualClock) -> None:
    job, _ = store.create("j-1", "cv.match", {"jobDescription": "Python"}, idempotency_key="k-1")

    item = _item(store, job_key("j-1"))
    assert (item["entity"]["S"], item["status"]["S"], item["type"]["S"]) == ("job", "queued", "cv.match")
    assert item["created"]["S"] == created_sort_key(job.created_at, "j-1")
    assert int(item["version"]["N"]) == 1
    assert int(item["ttl"]["N"]) == math.ceil(job.expires_at)
    key = _item(store, idempotency_item_key("k-1"))
    assert (key["key"]["S"], key["jobId"]["S"]) == ("k-1", "j-1")
    assert int(key["ttl"]["N"]) < int(item["ttl"]["N"])  # a key lives 24 hours, a job 14 days

    clock.advance(60)
    store.claim("j-1", "w-1", 30)
    finished = store.finish("j-1", JobStatus.SUCCEEDED, result={"score": 91}).job
    assert finished is not None
    item = _item(store, job_key("j-1"))
    assert (item["status"]["S"], int(item["version"]["N"])) == ("succeeded", 3)
    # kept 14 days from the end, not the start
    assert int(item["ttl"]["N"]) == math.ceil(finished.finished_at + JOB_RETENTION_SECONDS)  # type: ignore[operator]


def test_the_sort_key_orders_as_the_seam_does_newest_first() -> None:
    positions = [(1_700_000_000.0, "b"), (1_700_000_000.0, "a"), (1_700_000_000.000001, "a"), (999.5, "z")]
    assert sorted(positions, reverse=True) == sorted(positions, key=lambda p: created_sort_key(*p), reverse=True)


def test_an_idempotency_key_of_any_length_and_characters_is_a_valid_item(store: DynamoDBJobStore) -> None:
    key = "ключ/#?" * 1000  # far beyond DynamoDB's 2,048-byte partition key

    first, created = store.create("j-1", "t", {"a": 1}, idempotency_key=key)
    again, created_again = store.create("j-2", "t", {"a": 1}, idempotency_key=key)

    assert created and not created_again and again.job_id == first.job_id


def test_a_result_of_any_nesting_and_size_is_kept_whole(store: DynamoDBJobStore) -> None:
    deep: dict[str, Any] = {"leaf": "x"}
    for _ in range(100):  # a DynamoDB map holds 32 levels; the job is kept as JSON
        deep = {"next": deep}
    result = {"deep": deep, "text": "é" * 150_000, "numbers": [0.1, 1e300, -0.0, 12345678901234567890]}
    store.create("j-1", "t", {})
    store.claim("j-1", "w", 30)

    store.finish("j-1", JobStatus.SUCCEEDED, result=result)

    job = store.get("j-1")
    assert job is not None and job.result == result


def test_a_job_with_the_largest_input_and_result_fits_an_item_compressed(store: DynamoDBJobStore) -> None:
    words = " ".join(f"skill-{i} years-{i % 17}" for i in range(12_000))  # text, as inputs and results are
    job_input, result = {"jobDescription": words[:250_000]}, {"report": words[:250_000], "score": 1}
    store.create("j-1", "t", job_input)
    store.claim("j-1", "w", 30)

    assert store.finish("j-1", JobStatus.SUCCEEDED, result=result).applied

    job = store.get("j-1")
    assert job is not None and job.input == job_input and job.result == result
    item = _item(store, job_key("j-1"))
    assert "jobZ" in item and "job" not in item
    assert [j.job_id for j in store.list_jobs(status=JobStatus.SUCCEEDED).jobs] == ["j-1"]  # through the index too


def test_a_job_that_cannot_fit_even_compressed_is_refused_naming_the_limit(store: DynamoDBJobStore) -> None:
    noise = base64.b64encode(os.urandom(400_000)).decode()  # does not compress

    with pytest.raises(StoreError, match="KiB even compressed"):
        store.create("j-1", "t", {"blob": noise})
    assert store.get("j-1") is None


def test_lists_follow_the_index_past_jobs_the_filter_drops(store: DynamoDBJobStore, clock: ManualClock) -> None:
    for i in range(40):
        store.create(f"a-{i:02d}", "common", {})
        if i % 13 == 0:
            store.create(f"b-{i:02d}", "rare", {})
        clock.advance(1)
    store.claim("b-13", "w", 30)

    queued_rare = store.list_jobs(status=JobStatus.QUEUED, job_type="rare", limit=1)
    rest = store.list_jobs(status=JobStatus.QUEUED, job_type="rare", limit=5, cursor=queued_rare.next_cursor)

    assert [j.job_id for j in queued_rare.jobs] == ["b-39"]
    assert [j.job_id for j in rest.jobs] == ["b-26", "b-00"]  # b-13 runs
    assert rest.next_cursor is None
    assert [j.job_id for j in store.list_jobs(job_type="rare", limit=10).jobs] == ["b-39", "b-26", "b-13", "b-00"]
    assert [j.job_id for j in store.list_jobs(status=JobStatus.RUNNING).jobs] == ["b-13"]


def test_two_containers_submitting_one_key_at_once_make_one_job(
    store: DynamoDBJobStore, other: DynamoDBJobStore
) -> None:
    answers: list[tuple[str, bool]] = []
    start = threading.Barrier(2)

    def submit(on: DynamoDBJobStore, job_id: str) -> None:
        start.wait()
        job, created = on.create(job_id, "t", {"same": "body"}, idempotency_key="order-1")
        answers.append((job.job_id, created))

    threads = [threading.Thread(target=submit, args=(s, f"j-{i}")) for i, s in enumerate((store, other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(created for _, created in answers) == [False, True]
    assert len({job_id for job_id, _ in answers}) == 1


def test_two_containers_finishing_one_job_apply_one_result(store: DynamoDBJobStore, other: DynamoDBJobStore) -> None:
    store.create("j-1", "t", {})
    store.claim("j-1", "w", 30)
    outcomes: list[bool] = []
    start = threading.Barrier(2)

    def finish(on: DynamoDBJobStore, status: JobStatus) -> None:
        start.wait()
        outcomes.append(on.finish("j-1", status, result={"by": status.value}, error="x").applied)

    threads = [
        threading.Thread(target=finish, args=(store, JobStatus.SUCCEEDED)),
        threading.Thread(target=finish, args=(other, JobStatus.FAILED)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == [False, True]
    job = store.get("j-1")
    assert job is not None and job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) and job.version == 3


def test_an_unreachable_endpoint_raises_store_unavailable(closed_port_url: str, clock: ManualClock) -> None:
    store = DynamoDBJobStore("jobs", endpoint_url=closed_port_url, region=REGION, clock=clock, max_attempts=1)
    with pytest.raises(StoreUnavailableError, match="retry later"):
        store.get("j-1")
    with pytest.raises(StoreUnavailableError):
        store.create("j-1", "t", {}, idempotency_key="k")
    with pytest.raises(StoreUnavailableError):
        store.ping()
    store.close()


def test_a_missing_table_is_a_store_error_that_names_the_variable(moto_reset: str, clock: ManualClock) -> None:
    store = DynamoDBJobStore("no-such-table", endpoint_url=moto_reset, region=REGION, clock=clock)
    with pytest.raises(StoreError, match="CV_ANALYTICS_JOBS_TABLE") as raised:
        store.get("j-1")
    assert not isinstance(raised.value, StoreUnavailableError)
    store.close()


def test_the_wiring_opens_this_store_when_the_jobs_table_is_named(store: DynamoDBJobStore, moto_reset: str) -> None:
    settings = Settings.from_env({"CV_ANALYTICS_JOBS_TABLE": store.table, "AWS_ENDPOINT_URL": moto_reset, "AWS_REGION": REGION})
    with Wiring(settings) as wiring:
        opened = wiring.job_store
        assert isinstance(opened, DynamoDBJobStore) and opened.table == store.table
        opened.create("j-1", "t", {})
    assert store.get("j-1") is not None
