"""Scenario 7: every process on one data directory, each stopped with SIGTERM in turn while traffic flows.

Two analytics workers (``cv-analytics worker``), two job workers (``cv-analytics jobs worker``, with the
test job types beside the built-in ones: ``tests.reliability.cli_with_test_jobs``), the result processor
(``cv-analytics jobs results``) and the report scheduler (``cv-analytics scheduler``, every minute, so the
last complete week's report is due as it starts) share one data directory. Contract traffic goes through
the real client and jobs through the jobs service, while each process in turn gets SIGTERM and is started
again once it has exited. The scheduler's turn comes while it is sending the report (the SMTP server takes
its time over the message); a job worker's while it is inside a job; the others' while a batch is in hand.

Each must exit 0 having finished what it held: nothing is left in flight on any queue at the end (the
visibility timeouts outlast the run, so a message a stopped process abandoned would still be there), every
interaction stored once, every job ``succeeded`` with its handler run to its end once, one report per
week and recipient.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from cv_analytics.reporting.weeks import IsoWeek, last_complete_week
from cv_analytics.wiring import ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, Settings, Wiring
from cv_analytics.wiring.client import open_client

from ..jobs.types_for_tests import register_test_types
from ..reporting import smtp_server
from ..reporting.conftest import free_port
from .harness import (
    REPOSITORY_ROOT,
    CliProcess,
    Survived,
    assert_exactly_once,
    child_env,
    contract_traffic,
    read_ledger,
    record_survived,
    tally_interactions,
    tally_jobs,
    wait_until,
)
from .test_job_crashes import LedgerTail

pytestmark = pytest.mark.slow

PAIRS = 3000
JOBS = 300
#: every tenth job is the built-in ``analytics.report``; the rest ``test.echo``, which keeps the ledger
REPORT_JOB_EVERY = 10
TRAFFIC_SECONDS = 12.0
SMTP_DATA_SECONDS = 1.0
RECIPIENT = "owner@cv.example.dev"
_SUBJECT_WEEK = re.compile(r"CV analytics (\d{4}-W\d{2})")


@dataclass
class SlowSink(smtp_server.Sink):
    """An SMTP server that takes ``SMTP_DATA_SECONDS`` over each message: a send is in progress long enough
    for a signal to land in it. ``receiving`` is set as a message's data arrives."""

    receiving: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.receiving.set()
        await asyncio.sleep(SMTP_DATA_SECONDS)
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Role:
    """One kind of process, how to start it, and the line it ends with after a clean stop."""

    name: str
    args: tuple[str, ...]
    closing: str
    module: str = "cv_analytics"
    #: the queue it receives from, when its turn waits for a batch in hand there
    queue: str | None = None


def _roles() -> list[Role]:
    analytics = Role("analytics worker", ("worker", "--wait", "0.5"), "processed ", queue=ANALYTICS_QUEUE)
    jobs = Role("job worker", ("jobs", "worker", "--wait", "0.5"), "handled ", module="tests.reliability.cli_with_test_jobs")
    return [
        Role("report scheduler", ("scheduler",), "scheduler: "),
        analytics,
        Role("analytics worker", analytics.args, analytics.closing, queue=ANALYTICS_QUEUE),
        jobs,
        Role("job worker", jobs.args, jobs.closing, module=jobs.module),
        Role("job results", ("jobs", "results", "--wait", "0.5"), "applied ", queue=JOBS_RESPONSE_QUEUE),
    ]


def _start(env, logs, role: Role) -> CliProcess:
    return CliProcess(env, *role.args, log_dir=logs, name=role.name.replace(" ", "-"), module=role.module)


def _settled(queue) -> bool:
    attributes = queue.attributes()
    return attributes.visible + attributes.in_flight + attributes.delayed == 0


def test_every_process_on_one_data_directory_stopped_in_turn_drains_and_nothing_happens_twice(data_dir, logs):
    started = time.monotonic()
    week = last_complete_week(time.time())
    port = free_port()
    env = child_env(
        data_dir,
        PYTHONPATH=os.pathsep.join([str(REPOSITORY_ROOT / "src"), str(REPOSITORY_ROOT)]),
        # longer than the run: a message a stopped process abandoned stays in flight to the end, where it shows
        CV_ANALYTICS_VISIBILITY_TIMEOUT="600",
        CV_ANALYTICS_REPORT_SCHEDULE="cron(* * * * ? *)",
        SENDER_EMAIL="reports@cv.example.dev",
        RECIPIENT_EMAIL=RECIPIENT,
        CV_ANALYTICS_SMTP_HOST="127.0.0.1",
        CV_ANALYTICS_SMTP_PORT=str(port),
        CV_ANALYTICS_SMTP_SECURITY="none",
    )
    traffic = contract_traffic(PAIRS, seed=7, start_ms=int(IsoWeek.parse(week).start.timestamp() * 1000))
    ledger = data_dir / "runs.jsonl"
    sink = SlowSink()
    controller = smtp_server.start(sink, port)
    roles = _roles()
    with Wiring(Settings.from_env(env)) as wiring:
        register_test_types(wiring.job_registry)
        service = wiring.job_service()
        processes = [_start(env, logs, role) for role in roles[1:]]  # the scheduler starts when its turn is near
        job_ids: list[str] = []
        errors: list[BaseException] = []

        def produce() -> None:
            client = open_client(wiring.settings)
            try:
                pace = TRAFFIC_SECONDS / len(traffic.events)
                begin = time.monotonic()
                for i, event in enumerate(traffic.events):
                    time.sleep(max(0.0, begin + i * pace - time.monotonic()))
                    client.log(event)
                assert client.flush(60)
            except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
                errors.append(exc)
            finally:
                client.close()

        def submit() -> None:
            try:
                pace = TRAFFIC_SECONDS / JOBS
                begin = time.monotonic()
                for i in range(JOBS):
                    time.sleep(max(0.0, begin + i * pace - time.monotonic()))
                    if i % REPORT_JOB_EVERY == 0:
                        job, _ = service.submit("analytics.report", {"week": week})
                    else:
                        job, _ = service.submit("test.echo", {"value": f"job-{i}", "sleep": 0.05, "record": str(ledger)})
                    job_ids.append(job.job_id)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=produce), threading.Thread(target=submit)]
        stops: list[tuple[str, int, bool]] = []  # (role, exit code, closing line seen)
        tail = LedgerTail(ledger)
        held_jobs: list[tuple[int, str]] = []
        try:
            for thread in threads:
                thread.start()
            scheduler = _start(env, logs, roles[0])
            processes.insert(0, scheduler)
            assert sink.receiving.wait(60), scheduler.stderr()[-3000:]  # the catch-up send of the week just ended
            for index, role in enumerate(roles):
                victim = processes[index]
                if role.name == "job worker":
                    seen: list[str] = []  # the job it was inside when seen (asking again may find it just ended)

                    def inside_a_job(pid: int = victim.pid) -> bool:
                        job = tail.job_of(pid)
                        seen[:] = [job] if job is not None else []
                        return bool(seen)

                    wait_until(inside_a_job, 30, what=f"{role.name} inside a job", interval=0.002)
                    held_jobs.append((victim.pid, seen[0]))
                elif role.queue is not None:  # a batch in hand (this process's or its twin's)
                    busy = wiring.queue(role.queue)
                    wait_until(lambda: busy.attributes().in_flight > 0, 30, what=f"a batch in hand ({role.name})", interval=0)
                code = victim.terminate(60)
                stops.append((role.name, code, role.closing in victim.stderr()))
                processes[index] = _start(env, logs, role)
            for thread in threads:
                thread.join(120)
            queues = [wiring.queue(name) for name in (ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE)]
            wait_until(
                lambda: sum(1 for row in wiring.store.iter_interactions()) >= PAIRS and len(job_ids) == JOBS
                and all(service.get(job_id).finished for job_id in job_ids),
                120,
                what="every interaction stored and every job finished",
                interval=0.25,
            )
            for index, role in enumerate(roles):
                code = processes[index].terminate(60)
                stops.append((role.name, code, role.closing in processes[index].stderr()))
            left = {queue.name: queue.attributes() for queue in queues}
            status = json.loads(_status(env))
        finally:
            for process in processes:
                process.kill()
            controller.stop()
        wall = time.monotonic() - started

        interactions = tally_interactions(wiring.store, traffic.correlation_ids)
        jobs = tally_jobs(wiring.job_store, job_ids, ledger=ledger)
        reports = Counter(
            (_SUBJECT_WEEK.search(str(r.message["Subject"])).group(1), recipient) for r in sink.received for recipient in r.recipients
        )
        reports_twice = sum(n - 1 for n in reports.values())
        in_flight = {name: a.visible + a.in_flight + a.delayed for name, a in left.items()}
        unclean = [stop for stop in stops if stop[1] != 0 or not stop[2]]
        runs = read_ledger(ledger)
        held_finished = sum(
            1 for pid, job in held_jobs if any(r["pid"] == pid and r["job"] == job and r["event"] == "end" for r in runs)
        )
        record_survived(
            Survived(
                scenario="7. shared data directory, SIGTERM in turn",
                injected=(
                    "SIGTERM to each of 2 analytics workers, 2 job workers, the result processor and the report "
                    "scheduler in turn (the scheduler mid-send, the job workers mid-job), each restarted"
                ),
                traffic=f"{PAIRS:,} interactions ({len(traffic):,} events, 10 % responses first) and {JOBS} jobs",
                lost=interactions.lost + jobs.lost + (0 if reports[(week, RECIPIENT)] else 1),
                duplicated=interactions.duplicated + jobs.duplicated + reports_twice,
                notes=(
                    f"{len(stops) - len(unclean)}/{len(stops)} clean exits; left in queues {sum(in_flight.values())}; "
                    f"reports {dict((f'{w} {r}', n) for (w, r), n in reports.items())}; "
                    f"{held_finished}/{len(held_jobs)} jobs in hand finished by their stopped worker; wall {wall:.1f} s"
                ),
            )
        )
        assert not errors, errors
        assert not unclean, [(p.args, p.stderr()[-1500:]) for p in processes]
        assert sum(in_flight.values()) == 0, in_flight
        assert all(q["visible"] + q["inFlight"] + q["delayed"] == 0 for q in status["queues"]), status["queues"]
        assert held_finished == len(held_jobs) == 2
        assert reports == {(week, RECIPIENT): 1}, reports
        assert_exactly_once(interactions, "interactions with every process stopped in turn")
        assert_exactly_once(jobs, "jobs with every process stopped in turn")


def _status(env) -> str:
    """``cv-analytics status --json`` on the data directory."""
    done = subprocess.run([sys.executable, "-m", "cv_analytics", "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout
