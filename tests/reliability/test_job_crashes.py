"""Scenario 8: job workers killed with SIGKILL mid-job, and the result processor killed holding results.

1,000 short jobs (``test.echo``, which appends its start and end to a ledger) go through two job
workers (``tests.jobs.worker_process``: the embedded worker with the test job types) and
``cv-analytics jobs results``. A worker is killed 10 times at random moments, each time while its
ledger shows it inside a handler (checked afterwards: that run never reached its end), and
restarted; the result processor is killed while it holds received results, and restarted, until it
has died both before and after writing a batch it held to the job store (what it held is what is
still received, not deleted, on the response queue once it is dead).

Execution is at least once: a run killed mid-job is run again. What must hold is the job's
outcome: every job ``succeeded`` exactly once, none left ``running`` or ``queued``, its result from
the attempt the store counts, and no handler run to its end twice.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import time
from dataclasses import dataclass

import pytest

from cv_analytics.jobs.messages import JobResult
from cv_analytics.queues.base import Message
from cv_analytics.wiring import JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, Settings, Wiring

from ..jobs.types_for_tests import register_test_types
from .harness import (
    REPOSITORY_ROOT,
    CliProcess,
    Survived,
    assert_exactly_once,
    child_env,
    random_moments,
    read_ledger,
    record_survived,
    tally_jobs,
    wait_until,
)

pytestmark = pytest.mark.slow

SEED = 8
JOBS = 1000
KILLS = 10
JOB_SLEEP_SECONDS = 0.02
#: The result processor is killed at most this many times looking for both windows (before and after its write).
MAX_RESULT_KILLS = 15
PEEK_LIMIT = 10_000


class LedgerTail:
    """Follows the ledger as the handlers append to it: which job each worker process is inside now."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._offset = 0
        self.inside: dict[int, str] = {}
        self.ended = 0

    def poll(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as ledger:
            ledger.seek(self._offset)
            data = ledger.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            run = json.loads(line)
            if run["event"] == "start":
                self.inside[run["pid"]] = run["job"]
            else:
                self.inside.pop(run["pid"], None)
                self.ended += 1

    def runs_ended(self) -> int:
        self.poll()
        return self.ended

    def job_of(self, pid: int) -> str | None:
        self.poll()
        return self.inside.get(pid)


def _pending(queue) -> int:
    attributes = queue.attributes()
    return attributes.visible + attributes.in_flight + attributes.delayed


@dataclass
class ResultKills:
    """The result processor's kills: how many, and the results they caught in its hands."""

    tries: int = 0
    #: results it had received but not yet written to the job store
    held_unapplied: int = 0
    #: results it had written to the job store but not yet deleted from the queue
    held_applied: int = 0

    @property
    def both_windows(self) -> bool:
        return bool(self.held_unapplied and self.held_applied)


def _kill_results_holding_a_batch(env, logs, wiring, results: CliProcess, kills: ResultKills) -> CliProcess:
    """SIGKILL ``jobs results`` while it holds results, note what it held, and start it again (returned).

    Nobody else receives from the response queue: a message received since the last look (its receive
    count moved) and still there once the processor is dead was held by it, not deleted; whether it had
    been applied is the job store's say. The kill aims at the window not landed yet: as soon as results
    are received (before their write), or once the store shows one of them applied (before the delete).
    Nothing to receive within the wait: nothing is done.
    """
    response_queue = wiring.queue(JOBS_RESPONSE_QUEUE)
    seen = {(m.message_id, m.receive_count) for m in response_queue.peek(PEEK_LIMIT) if m.receive_count}

    def received() -> list[Message]:
        return [m for m in response_queue.peek(PEEK_LIMIT) if m.receive_count and (m.message_id, m.receive_count) not in seen]

    def applied(message: Message) -> bool:
        job = wiring.job_store.get(JobResult.from_body(message.body).job_id)
        return job is not None and job.finished

    after_the_write = kills.held_unapplied > 0
    deadline = time.monotonic() + 10
    while not ((held := received()) and (not after_the_write or any(applied(m) for m in held))):
        if time.monotonic() > deadline:
            return results
    results.kill()
    kills.tries += 1
    for message in received():
        if applied(message):
            kills.held_applied += 1
        else:
            kills.held_unapplied += 1
    return _start_results(env, logs)


def _start_results(env, logs) -> CliProcess:
    return CliProcess(env, "jobs", "results", "--wait", "0.2", log_dir=logs, name="jobs-results")


def _start_worker(env, logs) -> CliProcess:
    worker = CliProcess(env, log_dir=logs, name="job-worker", module="tests.jobs.worker_process")
    worker.wait_for_output("ready", stream="stdout")  # its pid is the one the ledger will name
    return worker


def test_job_workers_killed_mid_job_and_the_result_processor_killed_holding_results(data_dir, logs):
    started = time.monotonic()
    env = child_env(
        data_dir,
        CV_ANALYTICS_JOBS_VISIBILITY_TIMEOUT="2",
        CV_ANALYTICS_JOBS_RESULTS_VISIBILITY_TIMEOUT="2",
        CV_ANALYTICS_JOBS_RETRY_BASE="0.1",
        PYTHONPATH=os.pathsep.join([str(REPOSITORY_ROOT / "src"), str(REPOSITORY_ROOT)]),
    )
    ledger = data_dir / "runs.jsonl"
    rng = random.Random(SEED)
    with Wiring(Settings.from_env(env)) as wiring:
        register_test_types(wiring.job_registry)
        service = wiring.job_service()
        request_queue, response_queue = wiring.queue(JOBS_REQUEST_QUEUE), wiring.queue(JOBS_RESPONSE_QUEUE)
        workers = [CliProcess(env, log_dir=logs, name="job-worker", module="tests.jobs.worker_process") for _ in range(2)]
        results = _start_results(env, logs)
        job_ids = [  # while the processes start
            service.submit("test.echo", {"value": f"job-{i}", "sleep": JOB_SLEEP_SECONDS, "record": str(ledger)})[0].job_id
            for i in range(JOBS)
        ]
        tail = LedgerTail(ledger)
        kills: list[tuple[int, str]] = []  # (pid, the job it was inside)
        missed = 0
        result_kills = ResultKills()
        try:
            # moments counted in runs ended, not seconds: they fall during the traffic however loaded the machine
            moments = random_moments(KILLS, low=JOBS * 0.05, high=JOBS * 0.8, seed=SEED)
            for number, moment in enumerate(moments, start=1):
                wait_until(lambda: tail.runs_ended() >= moment, 60, what=f"{moment:.0f} jobs run", interval=0.005)
                while True:
                    index = rng.randrange(len(workers))
                    victim = workers[index]
                    wait_until(lambda: tail.job_of(victim.pid) is not None, 30, what="a worker inside a job", interval=0.001)
                    victim.kill()
                    job = tail.job_of(victim.pid)  # the dead process's last line: still inside it unless it ended meanwhile
                    workers[index] = _start_worker(env, logs)
                    if job is not None:
                        kills.append((victim.pid, job))
                        break
                    missed += 1  # it finished that job just before the signal: not a mid-job kill, try again
                if not result_kills.both_windows:  # one try after each worker kill, while the traffic lasts
                    results = _kill_results_holding_a_batch(env, logs, wiring, results, result_kills)
            while not result_kills.both_windows and result_kills.tries < MAX_RESULT_KILLS and tail.runs_ended() < JOBS * 0.95:
                results = _kill_results_holding_a_batch(env, logs, wiring, results, result_kills)
            wait_until(
                lambda: _pending(request_queue) + _pending(response_queue) == 0, 120, what="every request and result settled", interval=0.2
            )
            exits = [process.terminate() for process in (*workers, results)]
        finally:
            for process in (*workers, results):
                process.kill()
        wall = time.monotonic() - started

        tally = tally_jobs(wiring.job_store, job_ids, ledger=ledger)
        runs = read_ledger(ledger)
        ends = {(run["job"], run["attempt"]) for run in runs if run["event"] == "end"}
        interrupted = [(run["job"], run["attempt"]) for run in runs if run["event"] == "start" and (run["job"], run["attempt"]) not in ends]
        killed_mid_job = sum(1 for pid, job in kills if not any(r["pid"] == pid and r["job"] == job and r["event"] == "end" for r in runs))
        inconsistent = []
        for job_id in job_ids:
            job = wiring.job_store.get(job_id)
            if job is not None and job.result is not None and job.result.get("attempt") != job.attempts:
                inconsistent.append(job_id)
        reapplied = sum(_ignored(process) for process in logs.glob("jobs-results.*.err"))
        dead_letters = request_queue.dead_letter_queue.attributes().visible + response_queue.dead_letter_queue.attributes().visible
        record_survived(
            Survived(
                scenario="8. job worker and result processor killed",
                injected=(
                    f"SIGKILL of a job worker ×{len(kills)} mid-job at random moments (seed {SEED}), each restarted; "
                    f"SIGKILL of `jobs results` ×{result_kills.tries} aimed at the results it held: "
                    f"{result_kills.held_unapplied} caught not yet written, {result_kills.held_applied} written, not deleted"
                ),
                traffic=f"{JOBS:,} jobs (test.echo, {JOB_SLEEP_SECONDS * 1000:.0f} ms each) through 2 job workers",
                lost=tally.lost,
                duplicated=tally.duplicated + len(inconsistent),
                notes=(
                    f"{len(interrupted)} run(s) interrupted and re-run, {tally.duplicated} completed twice"
                    f"{f' ({missed} more kill(s) fell between jobs)' if missed else ''}; "
                    f"{reapplied} redelivered result(s) ignored as already applied by the last result processor; "
                    f"states {dict(tally.details['states'])}; wall {wall:.1f} s"
                ),
            )
        )
        assert exits == [0, 0, 0], [p.stderr()[-2000:] for p in (*workers, results)]
        assert killed_mid_job == len(kills) == KILLS, (kills, missed)
        assert len(interrupted) == KILLS  # each kill interrupted exactly the run it was inside, which ran again
        assert result_kills.both_windows, result_kills
        assert dead_letters == 0
        assert not inconsistent, inconsistent[:5]
        assert_exactly_once(tally, "jobs through killed workers and a killed result processor")


def _ignored(stderr: pathlib.Path) -> int:
    """``ignored N duplicate or late`` from a result processor's closing line (a killed one has none)."""
    for line in stderr.read_text(encoding="utf-8").splitlines():
        if line.startswith("applied ") and "ignored " in line:
            return int(line.split("ignored ", 1)[1].split()[0])
    return 0


def test_ledger_tail_follows_which_job_each_process_is_inside(tmp_path):
    ledger = tmp_path / "runs.jsonl"
    tail = LedgerTail(ledger)
    assert tail.job_of(1) is None
    lines = [{"event": "start", "job": "a", "pid": 1}, {"event": "start", "job": "b", "pid": 2}, {"event": "end", "job": "a", "pid": 1}]
    ledger.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"event": "sta', encoding="utf-8")
    assert (tail.job_of(1), tail.job_of(2)) == (None, "b")
    assert tail.inside == {2: "b"}  # the half-written last line is left for the next poll
