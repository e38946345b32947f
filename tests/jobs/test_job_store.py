"""The job store's rules (written once in the JobStore base), on every backend: parametrize ``backend``."""

from __future__ import annotations

import threading

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.exceptions import IdempotencyConflictError, InvalidCursorError, InvalidTransitionError, JobFinishedError, JobNotFoundError
from cv_analytics.stores.jobs import (
    ALLOWED_TRANSITIONS,
    IDEMPOTENCY_KEY_SECONDS,
    JOB_RETENTION_SECONDS,
    ClaimOutcome,
    JobStatus,
    JobStore,
    can_move,
)
from cv_analytics.stores.jobs.sqlite import SQLiteJobStore

TERMINAL = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED]


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def store(backend, tmp_path, clock: ManualClock, request) -> JobStore:
    if backend == "sqlite":
        made = SQLiteJobStore(tmp_path / "jobs.db", clock=clock)
    elif backend == "dynamodb":
        # moto: DynamoDB over HTTP on loopback, a fresh jobs table (tests/aws_backends/moto_envs.py)
        from tests.aws_backends.moto_envs import make_dynamodb_job_store

        made = make_dynamodb_job_store(request.getfixturevalue("moto_reset"), clock)
    else:  # pragma: no cover - other backends join the params with their fixtures
        raise AssertionError(backend)
    yield made
    made.close()


def test_terminal_states_never_move_and_nothing_returns_to_queued_but_a_retry():
    for status in TERMINAL:
        assert ALLOWED_TRANSITIONS[status] == frozenset()
        assert status.terminal
    assert not can_move(JobStatus.QUEUED, JobStatus.QUEUED)
    assert can_move(JobStatus.RUNNING, JobStatus.QUEUED)
    for status in JobStatus:
        for to in TERMINAL:
            assert can_move(status, to) == (not status.terminal)


def test_a_finished_job_refuses_every_move(store):
    job, _ = store.create("j1", "t", {})
    done = store.finish("j1", JobStatus.SUCCEEDED, result={"ok": 1}).job
    for to in JobStatus:
        with pytest.raises(InvalidTransitionError):
            done.moved(to, 0.0)
    assert job.version == 1 and done.version == 2


def test_claim_takes_a_queued_job_once_and_counts_the_attempt(store):
    store.create("j1", "t", {"a": 1})
    first = store.claim("j1", "w1", 30)
    assert first.outcome is ClaimOutcome.CLAIMED
    assert first.job.status is JobStatus.RUNNING and first.job.attempts == 1 and first.job.lease_owner == "w1"
    assert store.claim("j1", "w2", 30).outcome is ClaimOutcome.HELD
    assert store.claim("j1", "w1", 30).outcome is ClaimOutcome.HELD  # its own duplicate delivery too
    assert store.claim("nope", "w1", 30).outcome is ClaimOutcome.UNKNOWN


def test_an_expired_lease_is_reclaimed_with_another_attempt(store, clock):
    store.create("j1", "t", {})
    store.claim("j1", "killed-worker", 30)
    clock.advance(29)
    assert store.claim("j1", "w2", 30).outcome is ClaimOutcome.HELD
    clock.advance(2)
    again = store.claim("j1", "w2", 30)
    assert again.claimed and again.job.attempts == 2 and again.job.lease_owner == "w2"
    # the killed worker, back from the dead, no longer holds it
    assert store.heartbeat("j1", "killed-worker", 30).lease_owner == "w2"
    assert store.report_progress("j1", "killed-worker", 50).progress is None


def test_heartbeat_extends_the_lease_so_no_one_reclaims_it(store, clock):
    store.create("j1", "t", {})
    store.claim("j1", "w1", 30)
    for _ in range(5):
        clock.advance(20)
        store.heartbeat("j1", "w1", 30)
    assert store.claim("j1", "w2", 30).outcome is ClaimOutcome.HELD


def test_concurrent_claims_let_one_worker_win(store):
    store.create("j1", "t", {})
    outcomes: list[ClaimOutcome] = []
    barrier = threading.Barrier(8)

    def claim(owner: str) -> None:
        barrier.wait()
        outcomes.append(store.claim("j1", owner, 30).outcome)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count(ClaimOutcome.CLAIMED) == 1
    assert store.get("j1").attempts == 1


def test_a_job_whose_result_is_on_its_way_is_not_claimed_again(store, clock):
    store.create("j1", "t", {})
    store.claim("j1", "w1", 30)
    store.mark_reported("j1", "w1", JobStatus.SUCCEEDED)
    clock.advance(60)  # even once the lease is over
    assert store.claim("j1", "w2", 30).outcome is ClaimOutcome.FINISHED
    assert store.finish("j1", JobStatus.SUCCEEDED, result={}).job.reported_status is None


def test_release_puts_a_failed_attempt_back_in_the_queue(store):
    store.create("j1", "t", {})
    store.claim("j1", "w1", 30)
    assert store.release("j1", "w2", "not mine").status is JobStatus.RUNNING
    released = store.release("j1", "w1", "attempt 1 failed")
    assert released.status is JobStatus.QUEUED and released.error == "attempt 1 failed" and released.lease_owner is None
    assert store.claim("j1", "w2", 30).job.attempts == 2


def test_a_late_or_duplicate_result_never_moves_a_job_back(store):
    store.create("j1", "t", {})
    store.claim("j1", "w1", 30)
    first = store.finish("j1", JobStatus.SUCCEEDED, result={"n": 1})
    assert first.applied and first.job.result == {"n": 1} and first.job.progress == 100
    for status in TERMINAL:
        later = store.finish("j1", status, result={"n": 2}, error="late")
        assert not later.applied
    job = store.get("j1")
    assert job.status is JobStatus.SUCCEEDED and job.result == {"n": 1} and job.error is None
    assert store.claim("j1", "w2", 30).outcome is ClaimOutcome.FINISHED


def test_cancel_in_each_state(store):
    store.create("queued", "t", {})
    assert store.cancel("queued").status is JobStatus.CANCELLED
    assert store.claim("queued", "w1", 30).outcome is ClaimOutcome.CANCELLED
    assert store.cancel("queued").status is JobStatus.CANCELLED  # again: nothing changes

    store.create("running", "t", {})
    store.claim("running", "w1", 30)
    told = store.cancel("running")
    assert told.status is JobStatus.RUNNING and told.cancel_requested
    assert store.heartbeat("running", "w1", 30).cancel_requested
    assert store.finish("running", JobStatus.CANCELLED).applied
    assert not store.finish("running", JobStatus.SUCCEEDED, result={}).applied  # a cancelled job stays cancelled

    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD):
        store.create(status.value, "t", {})
        store.finish(status.value, status)
        with pytest.raises(JobFinishedError):
            store.cancel(status.value)
    with pytest.raises(JobNotFoundError):
        store.cancel("nope")


def test_a_running_job_told_to_cancel_whose_worker_died_is_cancelled_on_redelivery(store, clock):
    store.create("j1", "t", {})
    store.claim("j1", "w1", 30)
    store.cancel("j1")
    clock.advance(31)
    claim = store.claim("j1", "w2", 30)
    assert claim.outcome is ClaimOutcome.CANCELLED and claim.job.status is JobStatus.CANCELLED


def test_idempotency_key_same_body_same_job_other_body_conflict(store, clock):
    job, created = store.create("j1", "t", {"a": 1}, idempotency_key="key-1")
    assert created
    again, created = store.create("j2", "t", {"a": 1}, idempotency_key="key-1")
    assert not created and again.job_id == "j1"
    with pytest.raises(IdempotencyConflictError):
        store.create("j3", "t", {"a": 2}, idempotency_key="key-1")
    assert store.get("j2") is None and store.get("j3") is None


def test_idempotency_keys_are_kept_24_hours(store, clock):
    store.create("j1", "t", {"a": 1}, idempotency_key="key-1")
    clock.advance(IDEMPOTENCY_KEY_SECONDS - 1)
    with pytest.raises(IdempotencyConflictError):
        store.create("j2", "t", {"a": 2}, idempotency_key="key-1")
    clock.advance(2)
    job, created = store.create("j3", "t", {"a": 2}, idempotency_key="key-1")
    assert created and job.job_id == "j3"


def test_a_forgotten_key_can_be_used_again(store):
    store.create("j1", "t", {"a": 1}, idempotency_key="k")
    store.forget_idempotency_key("k", "other-job")  # names another job: kept
    assert not store.create("j2", "t", {"a": 1}, idempotency_key="k")[1]
    store.forget_idempotency_key("k", "j1")
    assert store.create("j3", "t", {"a": 1}, idempotency_key="k")[0].job_id == "j3"


def test_results_are_kept_14_days_and_reads_skip_expired_jobs(store, clock):
    store.create("old", "t", {})
    store.finish("old", JobStatus.SUCCEEDED, result={})
    clock.advance(JOB_RETENTION_SECONDS - 10)
    store.create("new", "t", {})
    assert store.get("old") is not None
    clock.advance(11)
    assert store.get("old") is None
    assert [j.job_id for j in store.list_jobs().jobs] == ["new"]
    assert store.claim("old", "w1", 30).outcome is ClaimOutcome.UNKNOWN
    with pytest.raises(JobNotFoundError):
        store.cancel("old")
    # a backend whose TTL deletes expired items (DynamoDB) has nothing to purge: its reads filter them
    assert store.purge_expired() == 0 if store.expires_by_itself else store.purge_expired() >= 1
    assert store.get("new") is not None


def test_list_is_newest_first_in_pages_with_filters(store, clock):
    for i in range(7):
        store.create(f"j{i}", "even" if i % 2 == 0 else "odd", {})
        clock.advance(1)
    store.create("same-time-a", "odd", {})
    store.create("same-time-b", "odd", {})
    store.finish("j0", JobStatus.SUCCEEDED, result={})
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_jobs(limit=3, cursor=cursor)
        seen += [j.job_id for j in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["same-time-b", "same-time-a", "j6", "j5", "j4", "j3", "j2", "j1", "j0"]
    assert [j.job_id for j in store.list_jobs(job_type="even").jobs] == ["j6", "j4", "j2", "j0"]
    assert [j.job_id for j in store.list_jobs(status=JobStatus.SUCCEEDED).jobs] == ["j0"]
    assert [j.job_id for j in store.list_jobs(status=JobStatus.QUEUED, job_type="even", limit=1).jobs] == ["j6"]


@pytest.mark.parametrize("cursor", ["zzz", "", "bm9wZQ", "WzEsMl0"])
def test_a_cursor_not_handed_out_is_refused(store, cursor):
    store.create("j1", "t", {})
    if not cursor:
        assert store.list_jobs(cursor=cursor).jobs  # empty: the first page
        return
    with pytest.raises(InvalidCursorError):
        store.list_jobs(cursor=cursor)


def test_every_change_bumps_the_version_and_reaches_listeners(store):
    seen: list[int] = []
    store.subscribe(lambda job: seen.append(job.version))
    store.create("j1", "t", {})
    store.claim("j1", "w1", 30)
    store.report_progress("j1", "w1", 40, "reading")
    store.heartbeat("j1", "w1", 30)
    store.finish("j1", JobStatus.SUCCEEDED, result={})
    store.finish("j1", JobStatus.FAILED)  # ignored: no change, no news
    assert seen == [1, 2, 3, 4, 5]
    assert store.get("j1").etag == '"j1.5"'


def test_the_store_keeps_its_jobs_across_reopening(tmp_path, clock):
    first = SQLiteJobStore(tmp_path / "jobs.db", clock=clock)
    first.create("j1", "t", {"ünïcode": "✓"}, idempotency_key="k")
    first.close()
    again = SQLiteJobStore(tmp_path / "jobs.db", clock=clock)
    assert again.get("j1").input == {"ünïcode": "✓"}
    assert again.schema_version == 1
    again.close()


def test_a_damaged_job_store_is_a_fatal_error_naming_the_file(tmp_path, clock):
    from cv_analytics.exceptions import DatabaseCorruptError

    path = tmp_path / "jobs.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseCorruptError, match="jobs.db"):
        SQLiteJobStore(path, clock=clock)
